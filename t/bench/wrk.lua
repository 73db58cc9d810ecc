-- t/bench/wrk.lua: wrk script used by tools/bench.
--
-- done() prints one machine-readable line with the exact totals and the
-- latency percentiles (microseconds), so the harness need not parse wrk's
-- rounded human output.  When BENCH_LIMIT is set in the environment, every
-- wrk thread stops after that many responses (use -t1 for an exact total):
-- this turns wrk's time-bounded run into a request-bounded one (the -d
-- duration stays as an upper bound).  wrk's main thread sleeps for the whole
-- -d regardless, so the script prints a marker on which tools/bench sends
-- wrk SIGINT, which makes it stop and report at once.

local limit = tonumber(os.getenv("BENCH_LIMIT") or "")

if limit then
   local n = 0
   response = function(status, headers, body)
      n = n + 1
      if n == limit then
         io.write("BENCH-LIMIT-REACHED\n")
         io.flush()
         wrk.thread:stop()
      end
   end
end

done = function(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      "BENCH-RESULT requests=%d bytes=%d duration_us=%d p50_us=%d p99_us=%d " ..
      "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
      summary.requests, summary.bytes, summary.duration,
      latency:percentile(50), latency:percentile(99),
      e.connect, e.read, e.write, e.status, e.timeout))
end
