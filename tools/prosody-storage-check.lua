-- Connect to every SQL database a configuration tree names, with Prosody's
-- own configuration parser and SQL layer, before that tree goes live: a
-- wrong password or an unreachable database server then stops the deploy
-- instead of a running server losing its storage.
--   lua5.4 prosody-storage-check.lua /etc/prosody/releases/<id>/prosody.cfg.lua
-- Prints one line per database ("ok ..." or "error ...", never a password)
-- and exits 1 if any connection failed.  SQLite3 files are not opened here:
-- connecting would create them as the wrong user.
local script_dir = arg[0]:match("^(.*)/") or "."
package.path = script_dir .. "/?.lua;" .. package.path
local stack = require "prosody_stack"

local configmanager = stack.load_config(arg[1], "usage: prosody-storage-check.lua CONFIG")
local sql = stack.need "util.sql"
local socket = require "socket"

-- Does this section keep any store in SQL?
local function uses_sql(section)
	local storage = configmanager.get(section, "storage")
	if storage == "sql" or configmanager.get(section, "default_storage") == "sql" then return true end
	if type(storage) == "table" then
		for _, backend in pairs(storage) do
			if backend == "sql" then return true end
		end
	end
	return false
end

-- LuaDBI reports every PostgreSQL failure as "no connection to the server":
-- tell an unreachable server from a refused login by trying TCP first.
local function diagnose(params)
	if params.driver ~= "PostgreSQL" or not params.host then return "" end
	local port = params.port or 5432
	local conn, reason = socket.connect(params.host, port)
	if not conn then return (" (%s:%s unreachable: %s)"):format(params.host, port, reason) end
	conn:close()
	return (" (%s:%s answers: wrong database, username or password?)"):format(params.host, port)
end

-- One entry per distinct database, named without its password.
local databases, order = {}, {}
for section in pairs(configmanager.getconfig()) do
	local params = uses_sql(section) and configmanager.get(section, "sql")
	if type(params) == "table" then
		local name = ("%s %s@%s:%s as %s"):format(params.driver, params.database, params.host or "local",
			params.port or "default", params.username or "-")
		if not databases[name] then
			databases[name] = params
			order[#order + 1] = name
		end
	end
end
table.sort(order)

local failed = false
for _, name in ipairs(order) do
	local params = databases[name]
	if params.driver == "SQLite3" then
		print("skipped " .. name .. " (a file, created by Prosody itself)")
	else
		local engine = sql:create_engine(params)
		-- engine:connect() returns true, or nil and the driver's message.
		local called, connected, reason = pcall(engine.connect, engine)
		if called and connected then
			print("ok " .. name)
		else
			failed = true
			reason = tostring((called and reason) or connected or "unknown error"):gsub("%s+$", "")
			if params.password and params.password ~= "" then
				reason = reason:gsub(params.password:gsub("%p", "%%%0"), "********")
			end
			print("error " .. name .. ": " .. reason .. diagnose(params))
		end
	end
end
if #order == 0 then print("no SQL storage") end
os.exit(failed and 1 or 0)
