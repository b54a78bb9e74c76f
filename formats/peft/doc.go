// Package peft reads and writes the adapter_config.json of Hugging Face
// PEFT LoRA adapters, with PEFT's own semantics for which modules an
// adapter targets and with which rank and scaling.
//
// The package owns the configuration only: the weights
// (adapter_model.safetensors) are read by package lora, which asks a Config
// for each projection whether it is targeted (Targets), its rank (Rank) and
// its scaling (Scaling).
//
// # Semantics
//
// The rules follow PEFT (peft.tuners.tuners_utils.check_target_module_exists
// and peft.utils.other.get_pattern_key), applied to module names of the base
// model such as "model.layers.1.self_attn.v_proj":
//
//   - target_modules as a list selects a module whose name equals an entry
//     or ends with "." + entry. With layers_to_transform, a suffix match
//     also needs the module's layer index (the number after layers_pattern,
//     or after any dotted component when layers_pattern is empty) to be
//     listed; an exact name match skips that check, as in PEFT.
//   - target_modules as the string "all-linear" selects every linear
//     projection of a decoder layer (q/k/v/o, gate/up/down) and never the
//     output head.
//   - target_modules as any other string is a regular expression that must
//     match the whole module name.
//   - exclude_modules (list or regular expression) removes modules first.
//   - rank_pattern and alpha_pattern are tried in the order of the file:
//     the first key for which (.*\.)?(key)$ matches the module name from
//     its start gives the rank or alpha; otherwise r and lora_alpha apply.
//   - scaling is alpha/r, or alpha/sqrt(r) with use_rslora.
//
// PEFT compiles patterns with Python's re module; this package uses Go's
// regexp (RE2), which agrees on the patterns people write for module names.
// A pattern RE2 cannot compile is rejected by Parse.
//
// # Not supported
//
// Parse refuses configurations that describe something the Switchyard
// engine cannot serve yet, each with an error wrapping ErrUnsupported:
// other PEFT methods than LORA, DoRA (use_dora), modules_to_save, trained
// biases (bias other than "none", lora_bias), LoRA on the token embedding
// or the output head, target_parameters, layer_replication,
// trainable_token_indices, activated LoRA (alora_invocation_tokens),
// QA-LoRA and Arrow routing.
//
// fan_in_fan_out is read and kept but has no effect: PEFT applies it to
// transformers' Conv1D layers only (and forces it off for torch.nn.Linear),
// and it never changes the layout of lora_A and lora_B.
package peft
