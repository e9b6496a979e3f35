"""`imggen serve`: an OpenAI-compatible images endpoint in front of many deployments, configured by
LiteLLM's proxy config. Needs the `serve` extra (starlette, uvicorn, PyYAML, redis); nothing outside
this package and `commands/serve.py` imports it."""
