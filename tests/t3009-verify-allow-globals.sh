#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='a stock Hugging Face Trainer checkpoint: save commits it,
verify admits its classes only when allowed (--allow-global, ckpt.yaml
verify.allow_globals), and an allow list opens nothing else'
. "$(dirname "$0")/lib.sh"

# A Trainer's checkpoint-N/ as torch writes it.  transformers itself is not
# on this machine: a stand-in module of the same name gives the pickles the
# same globals (TrainingArguments, an enum pickled by Python 3.11+ as
# getattr(IntervalStrategy, "STEPS")).
test_expect_success TORCH 'setup: a Trainer checkpoint made by torch' '
	mkdir -p fake/transformers &&
	: >fake/transformers/__init__.py &&
	cat >fake/transformers/training_args.py <<-\EOF &&
	import dataclasses, enum
	class IntervalStrategy(enum.Enum):
	    NO = "no"
	    STEPS = "steps"
	@dataclasses.dataclass
	class TrainingArguments:
	    output_dir: str = "out"
	    learning_rate: float = 5e-5
	    eval_strategy: IntervalStrategy = IntervalStrategy.STEPS
	EOF
	cat >mk.py <<-\EOF &&
	import json, os, random, sys
	sys.path.insert(0, "fake")
	import numpy as np, torch
	from transformers.training_args import TrainingArguments
	d = sys.argv[1]
	os.makedirs(d)
	torch.manual_seed(0)
	m = torch.nn.Linear(4, 3)
	torch.save(m.state_dict(), os.path.join(d, "pytorch_model.bin"))
	opt = torch.optim.AdamW(m.parameters())
	m(torch.ones(2, 4)).sum().backward()
	opt.step()
	torch.save(opt.state_dict(), os.path.join(d, "optimizer.pt"))
	torch.save(TrainingArguments(), os.path.join(d, "training_args.bin"))
	torch.save({"python": random.getstate(),
	            "numpy": np.random.get_state(),
	            "cpu": torch.random.get_rng_state()},
	           os.path.join(d, "rng_state.pth"))
	with open(os.path.join(d, "trainer_state.json"), "w") as f:
	    json.dump({"global_step": 500, "epoch": 1.0,
	               "best_metric": float("nan"),
	               "log_history": [{"loss": 1.25, "grad_norm": float("inf"),
	                                "step": 500}]}, f, indent=2)
	with open(os.path.join(d, "config.json"), "w") as f:
	    json.dump({"model_type": "toy"}, f)
	with open(os.path.join(d, "tokenizer.model"), "wb") as f:
	    f.write(bytes(range(1, 200)))
	EOF
	"$PYTHON" mk.py hfout/checkpoint-500 &&
	grep -q NaN hfout/checkpoint-500/trainer_state.json &&
	ckpt init -q s
'

test_expect_success TORCH 'save --adopt commits it (exit 0) and says what verify will refuse' '
	ckpt -C s save --run hf --adopt hfout/checkpoint-500 >out 2>err &&
	test_grep "runs/hf/step-500$" out &&
	test_grep "training_args.bin pickles globals that torch.load(weights_only=True) refuses" err &&
	test_grep "^  allow_globals:$" err &&
	test_grep "^    - transformers.training_args.TrainingArguments$" err &&
	! test_grep "^    - builtins\." err &&
	ckpt -C s ls --json >ls.json &&
	! grep -q "\"failed\": true" ls.json &&
	"$PYTHON" - <<-\PY
	import json
	m = json.load(open("s/runs/hf/step-500/ckpt-manifest.json"))
	v = m["validation"]
	assert v["result"] == "ok", v
	(f,) = [f for f in v["files"] if f["path"] == "training_args.bin"]
	assert "transformers.training_args.TrainingArguments" in f["unsafe_globals"]
	assert m["metrics"]["loss"] == 1.25, m["metrics"]
	PY
'

test_expect_success TORCH 'NaN in trainer_state.json and an opaque tokenizer.model are not failures' '
	test_expect_code 1 ckpt -C s verify hf@500 >out &&
	test_grep "trainer_state.json: OK$" out &&
	test_grep "tokenizer.model: OK$" out &&
	test_grep "training_args.bin: FAILED (unsafe global transformers.training_args.TrainingArguments)$" out &&
	test_expect_code 1 ckpt -C s verify --json hf@500 >v.json &&
	grep -q "\"json-python-number\"" v.json
'

test_expect_success TORCH 'latest --verified skips it until the store allows its classes' '
	test_expect_code 1 ckpt -C s latest --run hf --verified 2>err &&
	test_grep "does not verify" err &&
	cat >>s/ckpt.yaml <<-\EOF &&
	verify:
	  allow_globals:
	    - transformers.training_args.TrainingArguments
	    - transformers.training_args.IntervalStrategy
	EOF
	ckpt -C s latest --run hf --verified >out &&
	test_grep "runs/hf/step-500$" out &&
	ckpt -C s verify hf@500 >out &&
	test_grep "training_args.bin: OK$" out
'

test_expect_success TORCH 'a checkpoint verified by path finds its store'"'"'s allow list' '
	ckpt verify s/runs/hf/step-500 >out &&
	test_grep "training_args.bin: OK$" out
'

test_expect_success TORCH 'init --preset hf: a stock Trainer checkpoint saves without warning and verifies' '
	ckpt init --preset hf hfstore >/dev/null &&
	test_grep "^    - transformers.training_args.TrainingArguments$" hfstore/ckpt.yaml &&
	cp -r hfout hfout2 &&
	ckpt -C hfstore save --run hf --adopt hfout2/checkpoint-500 >/dev/null 2>err &&
	! test_grep "refuses" err &&
	ckpt -C hfstore verify hf@500 >out &&
	test_grep "training_args.bin: OK$" out &&
	test_expect_code 2 ckpt init --preset nosuch other 2>err &&
	test_path_is_missing other
'

test_expect_success TORCH 'inspect honours the same allow list, by reference and by path' '
	ckpt -C s inspect hf@500 >out &&
	! test_grep "NOT ALLOWED" out &&
	ckpt inspect s/runs/hf/step-500/training_args.bin >out &&
	! test_grep "NOT ALLOWED" out &&
	cp s/runs/hf/step-500/training_args.bin loose.bin &&
	test_expect_code 1 ckpt inspect loose.bin >out &&
	test_grep "NOT ALLOWED" out &&
	ckpt inspect --allow-global transformers.training_args.TrainingArguments \
		--allow-global transformers.training_args.IntervalStrategy loose.bin >out &&
	! test_grep "NOT ALLOWED" out &&
	test_expect_code 2 ckpt inspect --allow-global posix.system loose.bin 2>err
'

test_expect_success TORCH 'a path outside the store does not borrow $CKPT_STORE'"'"'s list' '
	test_expect_code 1 env CKPT_STORE=s ckpt verify loose.bin >out &&
	test_grep "FAILED" out &&
	test_expect_code 1 ckpt -C s verify loose.bin >out &&
	test_expect_code 1 env CKPT_STORE=s ckpt inspect loose.bin >out
'

test_expect_success TORCH 'with the allow list, save no longer warns' '
	ckpt -C s save --run hf --step 600 --adopt hfout/checkpoint-500 2>err &&
	! test_grep "references globals" err
'

test_expect_success TORCH '--allow-global does the same for a bare file; module.* covers the module' '
	test_expect_code 1 ckpt verify hfout/checkpoint-500/training_args.bin &&
	test_expect_code 1 ckpt verify --allow-global \
		transformers.training_args.TrainingArguments \
		hfout/checkpoint-500/training_args.bin >out &&
	test_grep "FAILED (unsafe" out &&
	ckpt verify --allow-global "transformers.training_args.*" \
		hfout/checkpoint-500/training_args.bin >out &&
	test_grep "training_args.bin: OK$" out &&
	test_expect_code 1 ckpt verify --allow-global "transformers.*" \
		hfout/checkpoint-500/training_args.bin
'

test_expect_success '--allow-global refuses what can run code, and what is not a name' '
	echo "{}" >x.json &&
	for g in builtins.getattr builtins.eval "builtins.*" os.system "os.*" \
		"posix.*" subprocess.Popen "subprocess.*" runpy._run_code \
		foo "a..b" "a.b." ".a" "1a.b" "a.*.b" "a b.c" "" \
		"a.__builtins__" "__main__.__builtins__" "a.b.__globals__"
	do
		test_expect_code 2 ckpt verify --allow-global "$g" x.json \
			2>err || return 1
		test_grep "allow-global" err || return 1
	done &&
	ckpt verify --allow-global __main__.Config x.json
'

test_expect_success 'ckpt.yaml verify.allow_globals is checked like the option' '
	ckpt init -q bad &&
	printf "verify:\n  allow_globals:\n    - os.system\n" >bad/ckpt.yaml &&
	test_expect_code 3 ckpt -C bad prune --dry-run --all 2>err &&
	test_grep "line 3, column 7: allow_globals: .os.system. names code-execution" err &&
	printf "verify:\n  allow_global: [a.b]\n" >bad/ckpt.yaml &&
	test_expect_code 3 ckpt -C bad prune --dry-run --all 2>err &&
	test_grep "did you mean .allow_globals." err
'

# Hostile pickles written opcode by opcode: an allow list must not become
# a way around the reader.
test_expect_success TORCH 'setup: pickles that abuse an allowed class' '
	cat >hostile.py <<-\EOF &&
	import sys
	def g(mod, name):
	    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"
	def s(x):
	    return b"X" + len(x).to_bytes(4, "little") + x.encode()
	A = "transformers.training_args"
	P = b"\x80\x02"
	cases = {
	  # getattr(allowed class, "__init__"): a dunder, never a member
	  "dunder.pkl": P + g(A, "IntervalStrategy") + g("builtins", "getattr")
	      + b"(" + g(A, "IntervalStrategy") + s("__init__") + b"tR.",
	  # getattr(class that is not allowed, "X")
	  "other.pkl": P + g("builtins", "getattr") + b"(" + g("mymod", "Cls")
	      + s("X") + b"tR.",
	  # getattr through NEWOBJ instead of REDUCE
	  "newobj.pkl": P + g("builtins", "getattr") + b"(" + g(A, "IntervalStrategy")
	      + s("STEPS") + b"t\x81.",
	  # a member fetched by getattr, then called
	  "call-member.pkl": P + g("builtins", "getattr") + b"(" + g(A, "IntervalStrategy")
	      + s("STEPS") + b"tR" + b")R.",
	  # the allowed module, a submodule of it
	  "submodule.pkl": P + g(A + ".sub", "Thing") + b")R.",
	  # a module.* pattern and a private name of that module
	  "private.pkl": P + g(A, "__builtins__") + b".",
	  # a denylisted callable beside allowed ones
	  "system.pkl": P + g(A, "TrainingArguments") + b")R" + b"0" + g("posix", "system")
	      + s("id") + b"\x85R.",
	  # the legitimate form, for contrast
	  "member.pkl": P + g("builtins", "getattr") + b"(" + g(A, "IntervalStrategy")
	      + s("STEPS") + b"tR.",
	}
	for name, data in cases.items():
	    open(name, "wb").write(data)
	EOF
	"$PYTHON" hostile.py
'

# verify with "transformers.training_args.*" allowed: FILE fails with ID
allowed_fails() {
	test_expect_code 1 ckpt verify --json \
		--allow-global "transformers.training_args.*" "$1" >h.json ||
		{ echo "$1 verified"; return 1; }
	grep -q "\"id\": \"$2\"" h.json || { echo "$1: no $2"; cat h.json; return 1; }
}

test_expect_success TORCH 'each abuse is still a finding with the module allowed' '
	allowed_fails dunder.pkl unsafe-call &&
	allowed_fails other.pkl unsafe-call &&
	allowed_fails newobj.pkl unsafe-call &&
	allowed_fails call-member.pkl unsafe-call &&
	allowed_fails submodule.pkl unsafe-global &&
	allowed_fails private.pkl unsafe-global &&
	allowed_fails system.pkl unsafe-global &&
	grep -q "posix.system" h.json &&
	ckpt verify --allow-global "transformers.training_args.*" member.pkl &&
	test_expect_code 1 ckpt verify member.pkl
'

test_done
