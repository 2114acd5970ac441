-- GET /basket as many members in turn: one session cookie per line of $OBOLE_BENCH_COOKIES.
local cookies = {}
for line in io.lines(os.getenv("OBOLE_BENCH_COOKIES")) do
  cookies[#cookies + 1] = line
end
local i = 0

request = function()
  i = i % #cookies + 1
  return wrk.format("GET", "/basket", { ["Cookie"] = cookies[i] })
end
