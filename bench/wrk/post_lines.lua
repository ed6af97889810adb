-- wrk script: POST a different pre-built form body per request, one per line of the file named by
-- the first script argument. Each client assertion is single-use, so the pool must outlast the run;
-- if it runs out the script wraps around and the hub answers 401 (counted as errors).
local bodies = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
end

function request()
  local body = bodies[next_index]
  next_index = next_index % #bodies + 1
  return wrk.format("POST", nil, nil, body)
end
