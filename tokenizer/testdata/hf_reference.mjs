// Writes hf_reference.json: token ids of Hugging Face's own JavaScript
// tokenizers (npm @huggingface/tokenizers 0.2.0) for the texts of
// texts.json, with the shared tokenizer.json files. Run with node from a
// directory where that package is installed:
//   node hf_reference.mjs SHARED_DIR texts.json > hf_reference.json
import { Tokenizer } from "@huggingface/tokenizers";
import fs from "fs";

const [shared, textsFile] = process.argv.slice(2);
const texts = JSON.parse(fs.readFileSync(textsFile, "utf8"));
const out = { generator: "@huggingface/tokenizers 0.2.0", texts, tokenizers: {} };
for (const name of ["mistral", "llama3", "qwen3"]) {
  const dir = `${shared}/tokenizers/hf/${name}`;
  const tok = new Tokenizer(
    JSON.parse(fs.readFileSync(`${dir}/tokenizer.json`, "utf8")),
    JSON.parse(fs.readFileSync(`${dir}/tokenizer_config.json`, "utf8")),
  );
  const ids = [], decoded = [];
  for (const text of texts) {
    const e = tok.encode(text, { add_special_tokens: true }).ids;
    ids.push(e);
    decoded.push(e.length ? tok.decode(e, { skip_special_tokens: true }) : "");
  }
  out.tokenizers[name] = { ids, decoded };
}
process.stdout.write(JSON.stringify(out));
