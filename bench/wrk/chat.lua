-- wrk script: POST one small OpenAI chat completion (non-streaming) per request.
-- Model name and path match bench/gateway.py; override the body with WRK_BODY if needed.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer unused"
wrk.body = os.getenv("WRK_BODY") or
  '{"model":"mock-model","messages":[{"role":"user","content":"hello there, how are you today?"}],"max_tokens":16}'
