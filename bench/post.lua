-- wrk script for bench/run.py: one OpenAI chat completion request, the same on
-- every path. The `apikey` header is the gateway key of the bench config
-- (bench/run.py's CLIENT_KEY); the mock and nginx ignore it.
-- The request is static (no request() function), so wrk builds it once.
wrk.method = "POST"
wrk.body = '{"messages":[{"role":"user","content":"What is 1+1?"}]}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["apikey"] = "bench-client-key"
