-- Shared by the Lua tools in this folder: load Prosody's own libraries
-- (Debian's packages of 0.12 and 13.0) and a configuration through
-- Prosody's own parser.
--   local script_dir = arg[0]:match("^(.*)/") or "."
--   package.path = script_dir .. "/?.lua;" .. package.path
--   local stack = require "prosody_stack"
local source_dir = os.getenv("PROSODY_SRCDIR") or "/usr/lib/prosody"
package.path = source_dir .. "/?.lua;" .. package.path
package.cpath = source_dir .. "/?.so;" .. package.cpath
-- 13.0 names its modules prosody.*; its loader maps them onto the tree.
if not pcall(require, "prosody.loader") then pcall(require, "loader") end

local stack = { source_dir = source_dir }

-- A Prosody library by its 0.12 name, whichever series is installed.
function stack.need(name)
	local ok, lib = pcall(require, "prosody." .. name)
	if ok then return lib end
	return require(name)
end

-- Prosody's configmanager with `config_file` loaded; exits 1 on an error.
function stack.load_config(config_file, usage)
	local configmanager = stack.need "core.configmanager"
	if not config_file then
		io.stderr:write(usage .. "\n")
		os.exit(2)
	end
	local ok, level, err = configmanager.load(config_file)
	if not ok then
		io.stderr:write(("config %s error: %s\n"):format(tostring(level), tostring(err)))
		os.exit(1)
	end
	return configmanager
end

return stack
