-- wrk script: a ~500-byte form-encoded QR_CODE_SCANNED delivery, as the platform sends it.
--
--   wrk -t2 -c32 -d10s -s bench/scan_form.lua http://127.0.0.1:8000/hooks/default/QR_CODE_SCANNED
--
-- Every request is a distinct scan: the QR code's short URL carries the wrk thread and a
-- per-thread counter, so no two deliveries share a dedupe key (event, code, timestamp) and
-- the receiver does its ordinary write, not the rarer "redelivery" path. The timestamp is
-- the wall clock (unix seconds) when the wrk thread starts: fresh for the whole run, so
-- no delivery is flagged as stale. Body length is constant (fixed-width counter).
--
-- done() prints one machine-readable line:
--   WRK_RESULT {"requests":..,"rps":..,"p50_ms":..,"p99_ms":..,"non2xx":..,"socket_errors":..,...}
-- where non2xx is wrk's errors.status (responses with status >= 400; wrk counts 3xx as ok).

local path = "/hooks/default/QR_CODE_SCANNED"
local headers = {
   ["Content-Type"] = "application/x-www-form-urlencoded",
   ["User-Agent"] = "QRPlanet-Webhook/2.4 (+https://www.qrplanet.com/help/article/webhooks)",
   ["Accept"] = "*/*",
}

local counter = 0
local prefix, suffix

local function build(ts)
   -- Everything before and after the QR code's id; values URL-encoded as a form sender would.
   prefix = "event=QR_CODE_SCANNED"
      .. "&timestamp=" .. ts
      .. "&user=acme-marketing"
      .. "&code=https%3A%2F%2Fqr.example.com%2F"
   suffix = "&secrettoken=sk_live_4f9c2e7a1b8d3f60c5e9a7b2d4f6e8a1"
      .. "&redirects=1284"
      .. "&visitors=911"
      .. "&device=iPhone"
      .. "&os=iOS+17.5"
      .. "&country=DE"
      .. "&city=Berlin"
      .. "&lng=13.404954"
      .. "&lat=52.520008"
      .. "&useragent=Mozilla%2F5.0+%28iPhone%3B+CPU+iPhone+OS+17_5+like+Mac+OS+X%29+AppleWebKit%2F605.1.15+%28KHTML%2C+like+Gecko%29+Version%2F17.5+Mobile%2F15E148+Safari%2F604.1"
      .. "&language=de-DE%2Cde%3Bq%3D0.9%2Cen-US%3Bq%3D0.8%2Cen%3Bq%3D0.7"
end

local function body_for(n)
   return prefix .. string.char(64 + (tid or 1)) .. string.format("%07d", n) .. suffix
end

function setup(thread)
   -- Runs in the main Lua state once per wrk thread: give each thread a distinct id.
   _G.nthreads = (_G.nthreads or 0) + 1
   thread:set("tid", _G.nthreads)
end

function init(args)
   build(os.time())
end

function request()
   counter = counter + 1
   return wrk.format("POST", path, headers, body_for(counter))
end

function done(summary, latency, requests)
   build(os.time())
   local e = summary.errors
   local secs = summary.duration / 1e6
   io.write(string.format(
      'WRK_RESULT {"script":"scan_form","body_bytes":%d,"requests":%d,"duration_s":%.3f,'
      .. '"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,'
      .. '"non2xx":%d,"socket_errors":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"timeouts":%d,"bytes_read":%d}\n',
      #body_for(1), summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
      e.status, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write,
      e.timeout, summary.bytes))
end
