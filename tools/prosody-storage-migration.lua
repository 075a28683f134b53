-- What playbooks/migrate-storage.yml needs around prosody-migrator, done with
-- Prosody's own configuration parser and storage drivers so that "before"
-- and "after" are counted the same way whatever the backend.
--
--   lua5.4 prosody-storage-migration.lua plan LIVE_CFG NEW_CFG MIGRATOR_CFG STORE...
--     Compares where every host of two configurations keeps each store and
--     writes prosody-migrator's configuration: one input block "from_N" (with
--     the hosts and stores to copy) and one output block "to_N" per pair of
--     backends (no file when nothing moves).  Prints the pairs as JSON, never
--     a password.
--   lua5.4 prosody-storage-migration.lua count MIGRATOR_CFG BLOCK HOSTS_BLOCK
--     Counts, in backend BLOCK, the stores HOSTS_BLOCK lists: per host and
--     store the entries (users, plus the host's own data) and the items
--     (archive items; top-level keys of key-value data).  Prints JSON.
--   lua5.4 prosody-storage-migration.lua set-aside MIGRATOR_CFG BLOCK HOSTS_BLOCK DIR
--     Moves the files an internal backend BLOCK holds for those stores into
--     DIR (kept, never deleted), so that a copy starts on empty stores.
--     Prints the moved paths as JSON.
local script_dir = arg[0]:match("^(.*)/") or "."
package.path = script_dir .. "/?.lua;" .. package.path
local stack = require "prosody_stack"

local json = stack.need "util.json"

local function fail(message)
	io.stderr:write(message .. "\n")
	os.exit(2)
end

local function sorted_keys(map)
	local keys = {}
	for key in pairs(map) do keys[#keys + 1] = key end
	table.sort(keys)
	return keys
end

-- "offline-archive" -> "offline", "archive"; "roster" -> "roster", "keyval"
-- (prosody-migrator's naming of stores).
local function split_store(store)
	local at, kind = store:match("()%-(%w+)$")
	if kind then return store:sub(1, at - 1), kind end
	return store, "keyval"
end

---------------------------------------------------------------------------
-- plan
---------------------------------------------------------------------------

-- The backend a host uses for a store, as core.storagemanager picks it:
-- `storage` (one name, or store -> name), then `default_storage`, then
-- internal.  The description is what prosody-migrator's blocks take.
local function backend_of(configmanager, host, store)
	local storage = configmanager.get(host, "storage")
	local name = type(storage) == "table" and storage[store] or type(storage) == "string" and storage or nil
	name = name or configmanager.get(host, "default_storage") or "internal"
	if name == "internal" then
		return { type = "internal", path = configmanager.get("*", "data_path") or "/var/lib/prosody" }
	elseif name == "sql" then
		local params = configmanager.get(host, "sql") or { driver = "SQLite3", database = "prosody.sqlite" }
		local backend = { type = "sql" }
		for key, value in pairs(params) do backend[key] = value end
		return backend
	end
	return { type = name }
end

-- A stable name for a backend, without its password.
local function backend_name(backend)
	if backend.type == "internal" then return "internal files in " .. backend.path end
	if backend.type == "sql" then
		return ("sql %s %s@%s:%s as %s"):format(backend.driver, backend.database, backend.host or "local",
			backend.port or "default", backend.username or "-")
	end
	return backend.type
end

-- Backends nothing can be copied from or to.
local NOT_COPIED = { memory = true, none = true, null = true }

-- host -> store -> backend, for every host section of a configuration.
local function storage_map(config_file, stores)
	local configmanager = stack.load_config(config_file, "plan: missing configuration")
	local map = {}
	for host in pairs(configmanager.getconfig()) do
		if host ~= "*" then
			map[host] = {}
			for _, store in ipairs(stores) do
				map[host][store] = backend_of(configmanager, host, (split_store(store)))
			end
		end
	end
	return map
end

local function plan(live_file, new_file, migrator_file, stores)
	local live, new = storage_map(live_file, stores), storage_map(new_file, stores)
	local pairs_by_name, order = {}, {}
	for _, host in ipairs(sorted_keys(new)) do
		for _, store in ipairs(stores) do
			local from, to = live[host] and live[host][store], new[host][store]
			if from and backend_name(from) ~= backend_name(to) and not NOT_COPIED[from.type] and not NOT_COPIED[to.type] then
				local name = backend_name(from) .. " -> " .. backend_name(to)
				local pair = pairs_by_name[name]
				if not pair then
					pair = { from = from, to = to, hosts = {}, count = 0 }
					pairs_by_name[name] = pair
					order[#order + 1] = name
				end
				pair.hosts[host] = pair.hosts[host] or {}
				table.insert(pair.hosts[host], store)
				pair.count = pair.count + 1
			end
		end
	end
	local serialize = stack.need "util.serialization".serialize
	local lines, report = {}, {}
	for number, name in ipairs(order) do
		local pair = pairs_by_name[name]
		pair.from.hosts = pair.hosts
		lines[#lines + 1] = ("from_%d %s"):format(number, serialize(pair.from))
		lines[#lines + 1] = ("to_%d %s"):format(number, serialize(pair.to))
		report[#report + 1] = {
			input = "from_" .. number, output = "to_" .. number,
			from = backend_name(pair.from), to = backend_name(pair.to),
			to_type = pair.to.type, hosts = pair.hosts, stores = pair.count,
		}
	end
	if #lines > 0 then
		local out = assert(io.open(migrator_file, "w"))
		out:write("-- prosody-migrator configuration written by prosody-storage-migration.lua\n")
		out:write(table.concat(lines, "\n"), "\n")
		out:close()
	end
	print(json.encode(report))
end

---------------------------------------------------------------------------
-- count and set-aside: prosody-migrator's own start-up, then its drivers
---------------------------------------------------------------------------

-- The blocks of a prosody-migrator configuration, read as the migrator does.
local function read_migrator_config(file)
	local blocks = {}
	local env = setmetatable({}, { __index = function(_, name) return function(block) blocks[name] = block end end })
	local chunk, err = stack.need "util.envload".envloadfile(file, env)
	if not chunk then fail("cannot read " .. file .. ": " .. tostring(err)) end
	chunk()
	return blocks
end

-- The start-up prosody-migrator does, minus switching user (the playbook
-- runs this as the prosody user) and with warnings only on stderr.
local function start_like_the_migrator()
	-- The paths Debian's prosody-migrator script sets before starting.
	CFG_SOURCEDIR, CFG_CONFIGDIR = stack.source_dir, "/etc/prosody"
	CFG_PLUGINDIR, CFG_DATADIR = stack.source_dir .. "/modules/", "/var/lib/prosody"
	local startup = stack.need "util.startup"
	startup.parse_args({ value_params = {} })
	startup.init_global_state()
	prosody.process_type = "migrator"
	prosody.opts.quiet = true
	startup.force_console_logging()
	startup.init_logging()
	startup.init_gc()
	startup.init_errors()
	startup.setup_plugindir()
	startup.setup_plugin_install_path()
	startup.setup_datadir()
	startup.chdir()
	startup.read_version()
	startup.check_dependencies()
	prosody.config_loaded = true
	startup.load_libraries()
	-- Loading modules asserts this exists; nothing here sends stanzas.
	prosody.core_post_stanza = function() error("no stanzas are sent while counting", 0) end
	return startup
end

-- Run `work` the way the migrator runs its copy: in an async runner, so
-- drivers that wait on the network can.
local function run_async(work)
	local server = stack.need "net.server"
	local runner = stack.need "util.async".runner(work, {
		error = function(_, err) error(err) end,
		waiting = function() server.loop() end,
	})
	runner:run(true)
end

local function open_driver(startup, host, backend)
	local configmanager, storagemanager = stack.need "core.configmanager", stack.need "core.storagemanager"
	if not prosody.hosts[host] then
		prosody.hosts[host] = startup.make_host(host)
		storagemanager.initialize_host(host)
		stack.need "core.usermanager".initialize_host(host)
	end
	if backend.type == "internal" then
		storagemanager.olddm.set_data_path(backend.path or prosody.paths.data)
	elseif backend.type == "sql" then
		configmanager.set(host, "sql", backend)
	end
	return assert(storagemanager.load_driver(host, backend.type))
end

local function table_size(data)
	local size = 0
	for _ in pairs(data) do size = size + 1 end
	return size
end

-- Users of a store; "" is how SQL keeps a host's own data, counted apart.
local function each_user(store)
	local step, state, user = store:users()
	return function()
		repeat user = step(state, user) until user ~= ""
		return user
	end
end

-- A key-value entry; nil when there is none, an error when the backend fails.
local function fetch(store, user)
	local data, err = store:get(user)
	if err then error(err) end
	return data
end

local counters = {}

function counters.keyval(store)
	local entries, items = 0, 0
	local function add(data)
		if data ~= nil then
			entries, items = entries + 1, items + (type(data) == "table" and table_size(data) or 1)
		end
	end
	add(fetch(store, nil))
	for user in each_user(store) do add(fetch(store, user)) end
	return entries, items
end

local function archive_items(store, user)
	local items = 0
	for _ in assert(store:find(user)) do items = items + 1 end
	return items
end

function counters.archive(store)
	local entries, items = 0, 0
	for user in each_user(store) do
		local n = archive_items(store, user)
		if n > 0 then entries, items = entries + 1, items + n end
	end
	return entries, items
end

-- A pubsub store is a key-value list of nodes, each node an archive of
-- items ("pep_<node>" per user, "pubsub_<node>" for the host's service).
function counters.pubsub(store, driver, name)
	local prefix = name == "pubsub_nodes" and "pubsub_" or name .. "_"
	local entries, items = 0, 0
	local function add(user)
		local nodes = fetch(store, user)
		if nodes then
			entries = entries + 1
			for node in pairs(nodes) do
				items = items + 1 + archive_items(assert(driver:open(prefix .. node, "archive")), user)
			end
		end
	end
	if name == "pubsub_nodes" then add(nil) end
	for user in each_user(store) do add(user) end
	return entries, items
end

local function counted_stores(startup, backend, hosts)
	local counts = {}
	for _, host in ipairs(sorted_keys(hosts)) do
		local driver = open_driver(startup, host, backend)
		counts[host] = {}
		for _, store in ipairs(hosts[host]) do
			local name, kind = split_store(store)
			local opened = assert(driver:open(name, kind == "pubsub" and "keyval" or kind))
			local entries, items = assert(counters[kind], "unknown store type " .. kind)(opened, driver, name)
			counts[host][store] = { entries = entries, items = items }
		end
	end
	return counts
end

local function count(migrator_file, block_name, hosts_block)
	local blocks = read_migrator_config(migrator_file)
	local backend, hosts = blocks[block_name], (blocks[hosts_block] or {}).hosts
	if not backend or not hosts then fail(("%s: no block %s with hosts from %s"):format(migrator_file, block_name, hosts_block)) end
	local startup = start_like_the_migrator()
	run_async(function() print(json.encode(counted_stores(startup, backend, hosts))) end)
end

---------------------------------------------------------------------------
-- set-aside
---------------------------------------------------------------------------

local function set_aside(migrator_file, block_name, hosts_block, dest)
	local blocks = read_migrator_config(migrator_file)
	local backend, hosts = blocks[block_name], (blocks[hosts_block] or {}).hosts
	if not backend or backend.type ~= "internal" or not hosts then
		fail(("%s: %s is not an internal backend with hosts from %s"):format(migrator_file, block_name, hosts_block))
	end
	local lfs = require "lfs"
	local datamanager = stack.need "util.datamanager"
	local data_path = backend.path
	datamanager.set_data_path(data_path)
	local moved = {}
	local function move(path)
		if not lfs.attributes(path) then return end
		local relative = path:sub(#data_path + 2)
		local target = dest
		for part in relative:gmatch("[^/]+/") do
			target = target .. "/" .. part:sub(1, -2)
			lfs.mkdir(target)
		end
		target = dest .. "/" .. relative
		local ok, err = os.rename(path, target)
		if not ok then fail(("cannot move %s to %s: %s"):format(path, target, err)) end
		moved[#moved + 1] = relative
	end
	lfs.mkdir(dest)
	for _, host in ipairs(sorted_keys(hosts)) do
		for _, store in ipairs(hosts[host]) do
			local name = split_store(store)
			-- A store is a directory of per-user files plus the host's own file.
			move((datamanager.getpath("x", host, name, "dat"):match("^(.*)/")))
			for _, ext in ipairs({ "dat", "list", "lidx" }) do move(datamanager.getpath(nil, host, name, ext)) end
		end
	end
	print(json.encode(moved))
end

local command = table.remove(arg, 1)
if command == "plan" and #arg >= 4 then
	plan(arg[1], arg[2], arg[3], { table.unpack(arg, 4) })
elseif command == "count" and #arg == 3 then
	count(arg[1], arg[2], arg[3])
elseif command == "set-aside" and #arg == 4 then
	set_aside(arg[1], arg[2], arg[3], arg[4])
else
	fail("usage: prosody-storage-migration.lua plan LIVE_CFG NEW_CFG MIGRATOR_CFG STORE... | "
		.. "count MIGRATOR_CFG BLOCK HOSTS_BLOCK | set-aside MIGRATOR_CFG BLOCK HOSTS_BLOCK DIR")
end
