// table.mjs: prints Switchyard / llama.cpp ratios from the JSON reports that
// compare.sh wrote: node table.mjs NAME SWITCHYARD.json LLAMACPP.json [NAME S.json L.json ...]
import { readFileSync } from "node:fs";

// [label, Switchyard row, llama.cpp row] as phase/seqs/adapters.
const figures = [
    ["prefill, 1 seq", "prefill/1/none", "prefill/1/none"],
    ["decode, 1 seq", "decode/1/none", "decode/1/none"],
    ["decode, 1 seq, rank-8 LoRA", "decode/1/one", "decode/1/one"],
    ["decode, 8 seqs, base", "decode/8/none", "decode/8/none"],
    ["decode, 8 seqs, distinct LoRAs, vs server (*)", "decode/8/distinct", "decode/8/distinct"],
    ["decode, 8 seqs, distinct LoRAs, vs base (**)", "decode/8/distinct", "decode/8/none"],
    ["prefill, 8 seqs, base", "prefill/8/none", "prefill/8/none"],
];
const load = (f) => {
    const rep = JSON.parse(readFileSync(f, "utf8"));
    return Object.fromEntries(rep.rows.map((r) => [`${r.phase}/${r.seqs}/${r.adapters}`, r.tokens_per_s]));
};
const lines = [["model", "figure", "Switchyard tok/s", "llama.cpp tok/s", "ratio"]];
const shares = [], distinct = [];
const args = process.argv.slice(2);
for (let i = 0; i + 2 < args.length; i += 3) {
    const sy = load(args[i + 1]), ll = load(args[i + 2]);
    const t = JSON.parse(readFileSync(args[i + 1], "utf8")).decode_in_turn_with_stream;
    if (t) shares.push(`${args[i]}: ${(100 * t.weight_share).toFixed(0)}% (${(100 * t.with_kv_share).toFixed(0)}% with the KV cache)`);
    const d = JSON.parse(readFileSync(args[i + 1], "utf8")).distinct_adapters_in_turn_with_base;
    if (d) distinct.push(`${args[i]}: ${d.ratio.toFixed(2)}x`);
    for (const [label, s, l] of figures) {
        if (sy[s] == null || ll[l] == null) continue;
        lines.push([args[i], label, sy[s].toFixed(1), ll[l].toFixed(1), (sy[s] / ll[l]).toFixed(2) + "x"]);
    }
}
const w = lines[0].map((_, c) => Math.max(...lines.map((l) => l[c].length)));
for (const l of lines) console.log(l.map((s, c) => (c < 2 ? s.padEnd(w[c]) : s.padStart(w[c]))).join("  "));
if (shares.length) {
    console.log("\nSwitchyard one-sequence decode against the streaming read, the two in turn (median pair):");
    console.log("    " + shares.join(", "));
}
if (distinct.length) {
    console.log("Switchyard 8 sequences on 8 distinct adapters against 8 on the base model, in turn (median pair):");
    console.log("    " + distinct.join(", "));
}
console.log("\n(*) llama.cpp's server batches only requests with the same adapters; its figure is 8");
console.log("    sequences on 8 adapters taking turns, one context each (run.mjs --loras).");
console.log("(**) llama.cpp applies LoRA adapters per context, not per sequence, so it cannot batch");
console.log("    sequences on different adapters; this figure is 8 sequences on the base model.");
