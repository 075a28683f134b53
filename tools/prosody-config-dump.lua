-- Load a configuration tree through Prosody's own parser and print, as JSON,
-- every option of every section and the files Prosody read.  Used by the
-- tests to prove each option landed in the section we meant.
--   lua5.4 tools/prosody-config-dump.lua /path/to/prosody.cfg.lua
-- Works with the Debian packages of Prosody 0.12 and 13.0.
local source_dir = os.getenv("PROSODY_SRCDIR") or "/usr/lib/prosody"
package.path = source_dir .. "/?.lua;" .. package.path
package.cpath = source_dir .. "/?.so;" .. package.cpath
-- 13.0 names its modules prosody.*; its loader maps them onto the tree.
if not pcall(require, "prosody.loader") then pcall(require, "loader") end

local function need(name)
	local ok, lib = pcall(require, "prosody." .. name)
	if ok then return lib end
	return require(name)
end

local configmanager = need "core.configmanager"
local json = need "util.json"

local config_file = assert(arg[1], "usage: prosody-config-dump.lua CONFIG")
local ok, level, err = configmanager.load(config_file)
if not ok then
	io.stderr:write(("config %s error: %s\n"):format(tostring(level), tostring(err)))
	os.exit(1)
end
-- Copy into plain tables: Prosody's config tables have metatables that
-- create sections on lookup, which would send the JSON encoder looping.
local function plain(value)
	if type(value) ~= "table" then return value end
	local copy = {}
	for key, item in next, value do copy[key] = plain(item) end
	return copy
end

print(json.encode({ sections = plain(configmanager.getconfig()), files = plain(configmanager.files()) }))
