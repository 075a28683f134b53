-- Load a configuration tree through Prosody's own parser and print, as JSON,
-- every option of every section and the files Prosody read.  Used by the
-- tests to prove each option landed in the section we meant.
--   lua5.4 tools/prosody-config-dump.lua /path/to/prosody.cfg.lua
-- Works with the Debian packages of Prosody 0.12 and 13.0.
local script_dir = arg[0]:match("^(.*)/") or "."
package.path = script_dir .. "/?.lua;" .. package.path
local stack = require "prosody_stack"

local configmanager = stack.load_config(arg[1], "usage: prosody-config-dump.lua CONFIG")
local json = stack.need "util.json"

-- Copy into plain tables: Prosody's config tables have metatables that
-- create sections on lookup, which would send the JSON encoder looping.
local function plain(value)
	if type(value) ~= "table" then return value end
	local copy = {}
	for key, item in next, value do copy[key] = plain(item) end
	return copy
end

print(json.encode({ sections = plain(configmanager.getconfig()), files = plain(configmanager.files()) }))
