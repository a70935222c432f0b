-- wrk script: fetch the paths listed in a file (one a line) in the file's order, round and round, each thread
-- starting at its own share of the list. bench/downloads.py writes the file: 10,000 distinct links, each three
-- times, in a shuffled order, so consecutive requests rarely name the same link.
--
--   wrk -t2 -c64 -d20s -s bench/wrk/links.lua http://127.0.0.1:PORT -- /path/to/links.txt 2
--                                                          (the list, then the number of threads given to -t)

local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
end

function init(args)
    paths = {}
    for line in io.lines(args[1]) do
        if line ~= "" then
            paths[#paths + 1] = line
        end
    end
    if #paths == 0 then
        error("no paths in " .. tostring(args[1]))
    end
    local thread_count = tonumber(args[2] or "1")
    position = math.floor(#paths * id / thread_count) % #paths
end

function request()
    position = position % #paths + 1
    return wrk.format("GET", paths[position])
end
