// Package server is Switchyard's HTTP API: an OpenAI-compatible server for
// one base model and every LoRA adapter of its registry.
//
// # Endpoints
//
//	POST   /v1/completions              text completions, streaming (SSE) or not
//	POST   /v1/chat/completions         chat completions, rendered with the model's chat template
//	GET    /v1/models                   the base model and every registered adapter, with its residency tier
//	GET    /v1/adapters                 registered adapter versions
//	POST   /v1/adapters                 register: JSON {"name","uri"} or a multipart upload of the files
//	GET    /v1/adapters/{ref}           one adapter (name or name@N) and its cache residency
//	DELETE /v1/adapters/{ref}           delete a version, or every version of a name
//	POST   /v1/adapters/{ref}/pin       keep it compute-ready; /unpin undoes one pin
//	POST   /v1/adapters/{ref}/prefetch  load it ahead of requests
//	POST   /v1/chains                   run a chain of steps (see below)
//	PUT    /v1/chains/{name}            save a named chain; GET and DELETE read and remove it
//	POST   /v1/chains/{name}/run        run a saved chain on an input
//	GET    /healthz, /readyz, /metrics  liveness, readiness, Prometheus metrics
//
// A request's model is the base model's name, a registered adapter
// ("name" for its newest version, or "name@N"), or, when
// Config.AllowOnDemand is set, an adapter URI (file://, s3://, https://,
// hf://) that the server registers and loads on first use. A request whose
// adapter is not compute-ready waits for it in its own goroutine
// (adapters.Cache.Acquire); the batch goes on without it.
//
// Besides OpenAI's fields, requests accept top_k, min_p,
// repetition_penalty and ignore_eos (generate max_tokens tokens even past
// an end-of-sequence token), as vLLM does, and every choice and stream
// chunk carries token_ids, the ids it generated.
//
// # Chains
//
// A chain runs several generations in one request. Each step names a model
// (usually an adapter) and a prompt template in Jinja syntax that can use
// the chain's input ({{ input }}), the output of any earlier step
// ({{ steps.NAME }}) and the previous step's output ({{ previous }}).
// Steps run as soon as the steps they depend on are done: by default a
// step depends on the step before it, and depends_on makes the chain a
// DAG. The response holds every step's output; with "stream": true each
// earlier step's result is sent as a "chain.step" event when it finishes,
// the last step's text as "chain.chunk" events as it comes, and the whole
// result as a final "chain.result" event. For example, three
// adapters in one request:
//
//	curl -s localhost:8080/v1/chains -d '{
//	  "input": "The meeting moved to Friday because the venue flooded.",
//	  "steps": [
//	    {"name": "summary", "model": "summarizer", "prompt": "Summarise: {{ input }}\n", "max_tokens": 64},
//	    {"name": "sql", "model": "sql-writer@2", "prompt": "Write SQL for: {{ steps.summary }}\n"},
//	    {"name": "answer", "model": "answerer", "prompt": "{{ input }}\n{{ steps.sql }}\nAnswer:",
//	     "depends_on": ["summary", "sql"], "temperature": 0}
//	  ]}'
//
// # Errors
//
// Errors have OpenAI's shape, {"error": {"message", "type", "param",
// "code"}}, with 400 for malformed or invalid requests, 404 for an unknown
// model or adapter, 403 for an adapter URI when on-demand loading is off,
// 413 for a body over Config.MaxRequestBytes, 429 (with Retry-After) when
// the scheduler's queue is full and 503 while the server drains. A panic in
// a handler becomes a 500 and the server keeps serving.
package server
