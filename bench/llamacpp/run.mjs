// run.mjs: llama.cpp (through node-llama-cpp's prebuilt CPU build) on a GGUF
// file, measuring what `switchyard bench` measures, and printing JSON:
//   - prefill of --prompt-tokens tokens, 1 sequence (median of --reps)
//   - greedy decode tok/s after that prompt, 1 sequence (median of --reps)
//   - the same decode with a LoRA adapter GGUF applied to the context
//   - 8 sequences prefilled then decoding together in one context, base model
//     only: llama.cpp applies adapters per context, not per sequence, so it
//     cannot batch sequences that use different adapters.
//   - with --loras, the mixed load as llama.cpp's server runs it: 8 requests,
//     each on its own adapter. llama-server puts slots in one batch only when
//     their adapter sets are equal, so such requests take turns; here one
//     context per adapter, one sequence each, decoded round-robin.
//
// node run.mjs --model M.gguf [--lora L.gguf] [--loras L1.gguf,L2.gguf,...] [--threads 2] [--prompt-tokens 512]
//              [--decode-steps 32] [--reps 3] [--seqs 8] [--flash-attention auto|on|off]
// node-llama-cpp is imported from $NODE_LLAMA_CPP_DIR/node_modules (compare.sh
// installs it there).
import { join } from "node:path";
import { homedir } from "node:os";
import { pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
    options: {
        model: { type: "string" },
        lora: { type: "string" },
        loras: { type: "string" },
        threads: { type: "string", default: "2" },
        "prompt-tokens": { type: "string", default: "512" },
        "decode-steps": { type: "string", default: "32" },
        reps: { type: "string", default: "3" },
        seqs: { type: "string", default: "8" },
        "flash-attention": { type: "string", default: "auto" },
    },
});
if (!opt.model) throw new Error("run.mjs: --model is required");
const threads = +opt.threads, promptLen = +opt["prompt-tokens"], steps = +opt["decode-steps"];
const reps = +opt.reps, nSeqs = +opt.seqs;
const flashAttention = { auto: "auto", on: true, off: false }[opt["flash-attention"]];

const cache = process.env.SWITCHYARD_CACHE ?? join(homedir(), ".cache", "switchyard");
const dir = process.env.NODE_LLAMA_CPP_DIR ?? join(cache, "node-llama-cpp");
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(join(dir, "node_modules", "node-llama-cpp", "dist", "index.js")).href);

const llama = await getLlama({ gpu: false, maxThreads: threads, logLevel: LlamaLogLevel.error, build: "never" });
const model = await llama.loadModel({ modelPath: opt.model, gpuLayers: 0 });
const vocab = model.fileInfo.metadata.tokenizer?.ggml?.tokens?.length ?? 1000;
// The same token ids as switchyard bench: a synthetic prompt per sequence.
const prompt = (i) => Array.from({ length: promptLen }, (_, j) => (i * 131 + j * 31 + 1) % vocab);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const now = () => performance.now() / 1000;

// decode evaluates `steps` greedy tokens on seq, one at a time, starting from token first.
async function decode(seq, first) {
    let n = 0;
    for await (const _ of seq.evaluate([first], { temperature: 0, yieldEogToken: true }))
        if (++n === steps) break;
}

// single measures prefill and decode of one sequence, median of reps.
async function single(lora) {
    const ctx = await model.createContext({
        contextSize: promptLen + steps + 16, threads, batchSize: 512, sequences: 1, flashAttention,
        ...(lora ? { lora: { adapters: [{ filePath: lora }] } } : {}),
    });
    const seq = ctx.getSequence();
    const pre = [], dec = [];
    for (let r = 0; r < reps; r++) {
        await seq.clearHistory();
        let t = now();
        await seq.evaluateWithoutGeneratingNewTokens(prompt(0));
        pre.push(promptLen / (now() - t));
        t = now();
        await decode(seq, 1);
        dec.push(steps / (now() - t));
    }
    await ctx.dispose();
    return { prefill: median(pre), decode: median(dec) };
}

// multi prefills nSeqs sequences in one context, then decodes them together.
async function multi() {
    const ctx = await model.createContext({
        contextSize: promptLen + steps + 16, threads, batchSize: 512, sequences: nSeqs, flashAttention,
    });
    const seqs = Array.from({ length: nSeqs }, () => ctx.getSequence());
    let t = now();
    await Promise.all(seqs.map((s, i) => s.evaluateWithoutGeneratingNewTokens(prompt(i))));
    const prefill = nSeqs * promptLen / (now() - t);
    t = now();
    await Promise.all(seqs.map((s, i) => decode(s, 1 + i)));
    const dec = nSeqs * steps / (now() - t);
    await ctx.dispose();
    return { prefill, decode: dec };
}

// mixed decodes one sequence per adapter, each in its own context, taking
// turns one token at a time, and returns the total tokens/s.
async function mixed(loras) {
    const ctxs = [];
    for (const filePath of loras)
        ctxs.push(await model.createContext({
            contextSize: promptLen + steps + 16, threads, batchSize: 512, sequences: 1, flashAttention,
            lora: { adapters: [{ filePath }] },
        }));
    const seqs = ctxs.map((c) => c.getSequence());
    for (const [i, s] of seqs.entries()) await s.evaluateWithoutGeneratingNewTokens(prompt(i));
    const gens = seqs.map((s, i) => s.evaluate([1 + i], { temperature: 0, yieldEogToken: true })[Symbol.asyncIterator]());
    const t = now();
    for (let k = 0; k < steps; k++) for (const g of gens) await g.next();
    const dec = loras.length * steps / (now() - t);
    for (const g of gens) await g.return();
    for (const c of ctxs) await c.dispose();
    return dec;
}

const rows = [];
const row = (phase, seqs, adapters, tokens, tps) => rows.push({ phase, seqs, adapters, tokens, tokens_per_s: tps });
const base = await single(null);
row("prefill", 1, "none", promptLen, base.prefill);
row("decode", 1, "none", steps, base.decode);
if (opt.lora) {
    const one = await single(opt.lora);
    row("prefill", 1, "one", promptLen, one.prefill);
    row("decode", 1, "one", steps, one.decode);
}
const m = await multi();
row("prefill", nSeqs, "none", nSeqs * promptLen, m.prefill);
row("decode", nSeqs, "none", nSeqs * steps, m.decode);
if (opt.loras) {
    const loras = opt.loras.split(",");
    row("decode", loras.length, "distinct", loras.length * steps, await mixed(loras));
}
console.log(JSON.stringify({ engine: "llama.cpp via node-llama-cpp", model: opt.model, threads, flash_attention: opt["flash-attention"], rows }, null, 2));
await model.dispose();
