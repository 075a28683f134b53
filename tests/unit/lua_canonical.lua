-- Reads length-framed Lua chunks on stdin ("<bytes>\n<chunk>"), runs each
-- in an empty environment (no globals: a chunk that tried to call anything
-- would fail), and writes back, length-framed, a canonical encoding of the
-- environment it left behind: exactly what the chunk set, and nothing else.
--   s<len>:<bytes>  string      i<digits>;  integer     f<%.17g>;  float
--   T / F           boolean     t<n>:<key><value>...    table, keys sorted by encoding
local enc
function enc(v)
	local kind = type(v)
	if kind == "string" then return "s" .. #v .. ":" .. v end
	if kind == "boolean" then return v and "T" or "F" end
	if kind == "number" then
		if math.type(v) == "integer" then return ("i%d;"):format(v) end
		return ("f%.17g;"):format(v)
	end
	if kind == "table" then
		local items = {}
		for key, value in pairs(v) do items[#items + 1] = enc(key) .. enc(value) end
		table.sort(items)
		return "t" .. #items .. ":" .. table.concat(items)
	end
	return "?" .. kind
end

while true do
	local header = io.read("l")
	if not header then break end
	local chunk = io.read(tonumber(header))
	local env = {}
	local fn, err = load(chunk, "=chunk", "t", env)
	local out
	if fn then
		local ok, run_err = pcall(fn)
		out = ok and enc(env) or ("ERR " .. tostring(run_err))
	else
		out = "ERR " .. tostring(err)
	end
	io.write(#out, "\n", out)
	io.flush()
end
