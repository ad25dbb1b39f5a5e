-- wrk script: a ~2 KB JSON QR_CODE_SCANNED delivery with nested metadata.
--
--   wrk -t2 -c32 -d10s -s bench/json_2k.lua http://127.0.0.1:8000/hooks/default/QR_CODE_SCANNED
--
-- The platform's standard fields at the top level (event, timestamp, user, code,
-- secrettoken) and the scan's fields, plus a nested "metadata" object (QR code, scan
-- context, campaign, account) as a richer sender or a relay would add. Every request is a
-- distinct scan (the code's short URL carries the wrk thread and a per-thread counter);
-- the timestamp is the wall clock when the wrk thread starts. Body length is constant.
--
-- done() prints one machine-readable line:
--   WRK_RESULT {"requests":..,"rps":..,"p50_ms":..,"p99_ms":..,"non2xx":..,"socket_errors":..,...}
-- where non2xx is wrk's errors.status (responses with status >= 400; wrk counts 3xx as ok).

local path = "/hooks/default/QR_CODE_SCANNED"
local headers = {
   ["Content-Type"] = "application/json",
   ["User-Agent"] = "QRPlanet-Webhook/2.4 (+https://www.qrplanet.com/help/article/webhooks)",
   ["Accept"] = "*/*",
}

local counter = 0
local prefix, suffix

local function build(ts)
   prefix = '{"event":"QR_CODE_SCANNED","timestamp":' .. ts .. ','
      .. '"user":"acme-marketing","code":"https://qr.example.com/'
   suffix = '",'
      .. '"secrettoken":"sk_live_4f9c2e7a1b8d3f60c5e9a7b2d4f6e8a1",'
      .. '"redirects":1284,"visitors":911,"device":"iPhone","os":"iOS 17.5","country":"DE",'
      .. '"lng":13.404954,"lat":52.520008,'
      .. '"metadata":{'
      ..   '"qrcode":{"id":"qr_8c41f0d2a9","title":"Spring menu - table tent","type":"DYNAMIC_URL",'
      ..     '"target":"https://www.example-bistro.de/menu/spring?utm_source=qr&utm_medium=print&utm_campaign=spring-menu-2025",'
      ..     '"folder":"Berlin Mitte / Tables","tags":["menu","print","table-tent","berlin"],'
      ..     '"created_at":"2025-03-01T09:12:44Z","updated_at":"2025-04-17T15:03:09Z",'
      ..     '"design":{"foreground":"#1b1f23","background":"#ffffff","frame":"scan-me","logo":true,"error_correction":"Q"}},'
      ..   '"scan":{"ip":"203.0.113.42","ip_hashed":"b6f0c2e9d17a4e5f","unique_visitor":false,'
      ..     '"user_agent":"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",'
      ..     '"browser":{"name":"Mobile Safari","version":"17.5"},'
      ..     '"device":{"type":"smartphone","brand":"Apple","model":"iPhone","screen":"390x844"},'
      ..     '"os":{"name":"iOS","version":"17.5"},'
      ..     '"language":"de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7","referrer":null,'
      ..     '"location":{"country":"DE","country_name":"Germany","region":"BE","region_name":"Berlin",'
      ..       '"city":"Berlin","postal_code":"10117","timezone":"Europe/Berlin","accuracy_km":5,'
      ..       '"lng":13.404954,"lat":52.520008,"source":"gps"},'
      ..     '"network":{"isp":"Example Mobile GmbH","asn":64500,"connection":"cellular"}},'
      ..   '"campaign":{"id":"cmp_2025_spring","name":"Spring menu 2025","channel":"print",'
      ..     '"utm":{"source":"qr","medium":"print","campaign":"spring-menu-2025","content":"table-tent-a6"},'
      ..     '"budget_eur":1500,"starts":"2025-03-15","ends":"2025-06-15"},'
      ..   '"account":{"id":"acc_51902","plan":"business","seats":5,"owner":"marketing@acme.example",'
      ..     '"webhook":{"id":"wh_7731","version":2,"retries":0,"delivery":"d2f1c9a0-5b7e-4c3d-9a1f-6e8b2c4d0f13"}},'
      ..   '"totals":{"redirects":1284,"visitors":911,"today":37,"this_week":212,"this_month":845}'
      .. '}}'
end

local function body_for(n)
   return prefix .. string.char(64 + (tid or 1)) .. string.format("%07d", n) .. suffix
end

function setup(thread)
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
      'WRK_RESULT {"script":"json_2k","body_bytes":%d,"requests":%d,"duration_s":%.3f,'
      .. '"rps":%.2f,"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,"mean_ms":%.3f,'
      .. '"non2xx":%d,"socket_errors":%d,"connect_errors":%d,"read_errors":%d,'
      .. '"write_errors":%d,"timeouts":%d,"bytes_read":%d}\n',
      #body_for(1), summary.requests, secs, summary.requests / secs,
      latency:percentile(50) / 1000, latency:percentile(90) / 1000,
      latency:percentile(99) / 1000, latency.max / 1000, latency.mean / 1000,
      e.status, e.connect + e.read + e.write + e.timeout, e.connect, e.read, e.write,
      e.timeout, summary.bytes))
end
