package server

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// threeStepChain runs three adapters: two on the input, the third on both
// of their outputs.
const threeStepChain = `{
  "input": "Once upon a time",
  "steps": [
    {"name": "a", "model": "r8", "prompt": "{{ input }}", "max_tokens": 8},
    {"name": "b", "model": "rand1", "prompt": "{{ input }} there was", "max_tokens": 8, "depends_on": []},
    {"name": "c", "model": "rand2", "prompt": "{{ steps.a }} and {{ steps.b }}", "max_tokens": 8, "depends_on": ["a", "b"]}
  ]%s}`

// TestChain runs a three-adapter chain and checks each step against
// engine.Generate on its rendered prompt.
func TestChain(t *testing.T) {
	e := newEnv(t, envOptions{randomAdapter: 2})
	status, _, body := e.do("POST", "/v1/chains", "application/json", strings.Replace(threeStepChain, "%s", "", 1))
	if status != 200 {
		t.Fatalf("chain: %d %v", status, body)
	}
	steps := body["steps"].([]any)
	out := map[string]string{}
	for _, s := range steps {
		m := s.(map[string]any)
		out[m["name"].(string)] = m["output"].(string)
	}
	a := e.generate("r8", e.tok.Encode("Once upon a time", true), 8, false)
	b := e.generate("rand1", e.tok.Encode("Once upon a time there was", true), 8, false)
	c := e.generate("rand2", e.tok.Encode(a.Text+" and "+b.Text, true), 8, false)
	if out["a"] != a.Text || out["b"] != b.Text || out["c"] != c.Text || body["output"] != c.Text {
		t.Errorf("chain outputs %q, want a=%q b=%q c=%q", out, a.Text, b.Text, c.Text)
	}

	// Streaming: chunks of the last step, then the whole result.
	req, _ := http.NewRequest("POST", e.ts.URL+"/v1/chains", strings.NewReader(strings.Replace(threeStepChain, "%s", `, "stream": true`, 1)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var streamed string
	var final map[string]any
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || line == "[DONE]" {
			continue
		}
		var ev map[string]any
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		switch ev["object"] {
		case "chain.chunk":
			streamed += ev["delta"].(string)
		case "chain.result":
			final = ev
		case "chain.step":
			steps := ev["result"].(map[string]any)
			if name := steps["name"]; name != "a" && name != "b" || steps["output"] != out[name.(string)] {
				t.Errorf("step event %v", ev)
			}
		default:
			t.Fatalf("unexpected event %v", ev)
		}
	}
	if streamed != c.Text || final == nil || final["output"] != c.Text {
		t.Errorf("streamed %q, final %v; want %q", streamed, final, c.Text)
	}

	// A saved chain runs by name.
	saved := `{"steps": [{"model": "r8", "prompt": "{{ input }}", "max_tokens": 8}, {"model": "rand1", "prompt": "{{ previous }}!", "max_tokens": 4}]}`
	if status, _, body := e.do("PUT", "/v1/chains/story", "application/json", saved); status != 200 {
		t.Fatalf("save: %d %v", status, body)
	}
	status, _, body = e.do("POST", "/v1/chains/story/run", "application/json", `{"input": "Once upon a time"}`)
	if status != 200 {
		t.Fatalf("run saved: %d %v", status, body)
	}
	d := e.generate("rand1", e.tok.Encode(a.Text+"!", true), 4, false)
	if body["output"] != d.Text {
		t.Errorf("saved chain: %q, want %q", body["output"], d.Text)
	}
	if status, _, _ := e.do("POST", "/v1/chains/missing/run", "application/json", `{}`); status != 404 {
		t.Errorf("missing chain: %d", status)
	}
	if status, _, body := e.do("POST", "/v1/chains", "application/json", `{"steps":[{"model":"nope","prompt":"x"}]}`); status != 404 {
		t.Errorf("unknown step model: %d %v", status, body)
	}
}
