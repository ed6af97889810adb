-- wrk script: POST the fixed form body given as the first script argument (headers come from -H).
function init(args)
  wrk.method = "POST"
  wrk.body = args[1]
end
