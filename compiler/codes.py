"""Every diagnostic code stackc emits, with the long explanation `stackc explain CODE` prints.

Codes are stable: a code is never reused for another problem. Families: SC1xx YAML, SC2xx
schema, SC3xx references and resolution, SC4xx capacity and parallelism, SC5xx compatibility,
SC6xx what a target cannot express, SC7xx security and safety.
"""

from __future__ import annotations

CODES: dict[str, tuple[str, str]] = {
    "SC000": ("internal compiler error", """
stackc hit a bug while compiling your spec. Nothing was written. Please report it with the spec
(secrets are never in a spec, so it is safe to share) and the command you ran.
"""),
    "SC001": ("the command line cannot be carried out", """
The flags or arguments ask for something stackc cannot do: a spec file that does not exist or is
a directory, a target no registered back end has (`stackc build --help` lists them), or two
flags that exclude each other (`--env` and `--all-envs`). Nothing was read or written. The exit
code is 2, as for any usage error.
"""),
    # ---------------------------------------------------------------- SC1xx YAML
    "SC101": ("invalid YAML", """
The file is not valid YAML at the position shown: an unclosed quote or bracket, a tab used for
indentation, or a line indented to a level no parent has. Fix the syntax; `yamllint` shows the
same position.
"""),
    "SC102": ("duplicate key", """
A mapping sets the same key twice. YAML parsers disagree on which value wins (most keep the
last, silently), so stackc refuses. Keep one of the two.

    models:
      - name: chat
        name: chat2      # SC102
"""),
    "SC103": ("document too large after alias expansion", """
Anchors and aliases (`&a`, `*a`) let a few lines expand into millions of values (the
"billion laughs" attack). stackc stops expanding at 200,000 values, far more than any real
stack needs. Write the values out, or use `defaults:` for settings many models share.
"""),
    "SC104": ("not a mapping", """
A stack spec is a mapping (`key: value` pairs) at the top, starting with `stack: v1`. The file
holds a list or a single value instead, or a mapping has a key that is not plain text, or a
merge key (`<<`) points at something other than a mapping.
"""),
    "SC105": ("file too large", """
Stack specs are a few kilobytes; stackc reads at most 4 MiB so that a wrong path (a model file,
a log) fails fast instead of being parsed. Check the path you passed.
"""),
    "SC106": ("not a text file", """
The file is not UTF-8 text or contains NUL bytes, so it is not a YAML document. Check the path,
and save the spec as UTF-8.

A double-quoted string can also escape something no UTF-8 text holds: half of a UTF-16
surrogate pair (`"\\ud83d"` without the `"\\ude00"` after it). JSON writers escape a character
above U+FFFF as such a pair; stackc joins a complete pair into its character, and refuses a half
at the escape that wrote it. Write the character itself, or one escape of its code point
(`"\\U0001F600"`).
"""),
    "SC107": ("empty file", """
The file has no YAML document. Start from one of the examples in `examples/`:

    stack: v1
    name: demo
    hardware: {gpu: l40s, gpus_per_node: 1}
    models:
      - {name: chat, model: meta-llama/Llama-3.1-8B-Instruct, max_context: 8192}
"""),
    "SC108": ("more than one document", """
The file holds several YAML documents separated by `---`. One file is one stack; use
`environments:` for variants of the same stack.
"""),
    "SC109": ("unsupported YAML tag", """
Tags such as `!!python/object` or `!include` ask the parser to build objects or read other
files. A stack spec holds plain data only; remove the tag.
"""),
    "SC110": ("number too long", """
An integer in the file has more than 1,000 digits. No field of a stack spec takes a number
anywhere near that long (the largest, `tokens_per_day`, is at most 16 digits), and Python
refuses to turn integers of more than 4,300 digits into text, so stackc stops at the number.
Write the value the field needs; `stackc schema` gives each field's range.
"""),
    # ---------------------------------------------------------------- SC2xx schema
    "SC201": ("unknown key", """
The key is not part of the spec at this place. The message suggests the closest known key;
`stackc schema` lists every key with its description (editors that read the JSON Schema
autocomplete them).
"""),
    "SC202": ("missing required key", """
A key the spec requires is absent: `stack`, `name`, `hardware` (with a `gpu`, or a `tier`),
`models`, and `name` and `model` in every model.
"""),
    "SC203": ("wrong type", """
The value has the wrong type: text where a number is expected, a list where a mapping is, and
so on. The help line repeats the field's description.
"""),
    "SC204": ("value not allowed", """
The value is not one of the accepted choices (an engine, a quantization, a task, a routing
mode). The message suggests the closest accepted value.
"""),
    "SC205": ("invalid size or rate", """
Sizes are a number and a unit with no space: `64GiB`, `500GB`, `1.5TiB`. Binary units (KiB,
MiB, GiB, TiB) are powers of 1024; decimal units (KB, MB, GB, TB) powers of 1000. Rates
(`hardware.disk_read`, `kubernetes.storage_read`) are a size per second: `500MB/s`, `2GiB/s`.
"""),
    "SC206": ("value out of range", """
A number is outside its allowed range (`gpu_memory_utilization` is in (0, 1], ports in 1-65535,
`replicas.min` at most `replicas.max`), or a list is empty where at least one item is needed.

A fixed `replicas` is at least 1: a model with no replica would be routed to and never served.
To leave a model out, set `enabled: false` (in an environment too); a range
`replicas: {min, max}` autoscales where the target can (helm; `min: 0` is SC611 there). A stack
or environment whose every model has `enabled: false` serves nothing, and is refused the same way.
"""),
    "SC207": ("invalid name or text", """
Names become container names, systemd units, Kubernetes objects and DNS names, so they are
DNS-1035 labels: lowercase letters, digits and `-`, starting with a letter, ending with a letter
or digit, at most 30 characters for the stack and 20 for a model. References (models, weights,
images, revisions) may use letters, digits and `._~+=@:/-` only: no spaces, quotes or shell
syntax, so that a value such as `x; rm -rf /` can never reach a shell.
"""),
    "SC208": ("missing or unsupported format version", """
Every spec starts with `stack: v1`, the version of this format. It lets later versions of
stackc read old specs correctly.
"""),
    "SC209": ("conflicting fields", """
Two fields say the same thing differently: `gpus: N` and `parallel:` both set the split of a
replica over GPUs. Keep one.
"""),
    # ---------------------------------------------------------------- SC3xx resolution
    "SC301": ("unknown model", """
The model is neither in the built-in catalog (`stackc catalog models`) nor a local directory
with a `config.json`. stackc needs the architecture to plan memory; it never downloads it.
Either use the model's Hugging Face repo id if the catalog knows it, point `model:` at a
directory with its `config.json`, or describe it inline:

    architecture: {layers: 32, hidden_size: 4096, heads: 32, kv_heads: 8,
                   vocab_size: 128256, params: 8.0, max_context: 131072}

You can also add models to the catalog with your own file (`STACKC_CATALOG`).
"""),
    "SC302": ("unknown GPU", """
`hardware.gpu` is not a GPU id in the catalog. `stackc catalog gpus` lists them (rtx-4090,
rtx-5090, l4, l40s, a10g, a100-40gb, a100-80gb, h100-sxm, h100-pcie, h200, b200, mi300x,
apple-m3-ultra).
"""),
    "SC303": ("undeclared secret", """
A `{secret: NAME}` reference names a secret that is not declared under `secrets:`. Declaring
the names in one place lets stackc list them for the operator (`.env.example`, the Kubernetes
Secret, the cloud secret store) and check every reference.
"""),
    "SC304": ("duplicate model name", """
Two models have the same `name`. The name is what clients send as the OpenAI `model`, and it
names containers and units, so it must be unique.
"""),
    "SC305": ("environment names an unknown model", """
An environment overlay changes a model that the base document does not define. Overlay entries
merge into base models by `name`; an entry for a new model must be complete (at least `name`
and `model`). The message suggests the closest base model.
"""),
    "SC306": ("cannot read the model or weights", """
A local path in `model:` or `weights:` does not exist, its `config.json` is missing or not
valid JSON, or the weights reference has a form stackc does not know. Paths are relative to
the spec file.
"""),
    "SC307": ("unknown environment", """
`--env` names an environment the spec does not define under `environments:`. The diagnostic
points at the `environments:` block (or the top of the file when there is none) and suggests
the closest name. The exit code is 2: it is a usage error.
"""),
    "SC308": ("cloud provider without region", """
`hardware.provider` is a cloud (aws, gcp, azure) but `hardware.region` is missing. The region
decides prices and where the terraform target creates resources.
"""),
    "SC310": ("image not pinned", """
An engine `image:` has no version tag, or `latest`, or a tag stackc cannot read a version from.
Unpinned images change under the same spec; and flags, defaults and memory accounting depend
on the engine version, which stackc reads from the tag. Use a release tag such as
`vllm/vllm-openai:v0.33.0`.
"""),
    "SC311": ("served name used twice", """
Two models (or a model and a LoRA adapter) answer to the same name. The gateway could not tell
which one a request is for.
"""),
    "SC312": ("duplicate overflow name", """
Two entries under `tiering.overflow` have the same `name`.
"""),
    "SC313": ("no instance type for this hardware", """
For a cloud provider, stackc picks the instance type that has `gpus_per_node` of the GPU. The
catalog has none with that count; the help line lists the sizes it knows. Add your own instance
types with `STACKC_CATALOG` if your cloud account has others.
"""),
    # ---------------------------------------------------------------- SC4xx capacity
    "SC401": ("model does not fit", """
The model's weights, plus what the engine needs beside them (activations of its profiling run,
CUDA graphs, NCCL buffers), are more than the share of the GPUs it may take. The engine would
fail at start-up with an out-of-memory error. The help line lists changes that stackc
re-planned and found to fit: more GPUs per replica, a quantization, an FP8 KV cache, a larger
GPU. `stackc plan` shows the figures.
"""),
    "SC402": ("KV cache too small", """
The weights fit, but the memory left for the KV cache does not hold `concurrency` sequences of
`max_context` tokens, or not even one (vLLM then refuses to start: "the model's max seq len is
larger than the maximum number of tokens that can be stored in KV cache"). The help line
lists changes that fit: more GPUs, an FP8 KV cache, fewer sequences, a shorter context.
"""),
    "SC403": ("context longer than the model", """
`max_context` is above the model's `max_position_embeddings`. The model was not trained for
longer sequences; engines refuse it (vLLM unless told to ignore it).
"""),
    "SC404": ("invalid tensor-parallel size", """
Tensor parallelism splits attention heads over GPUs: the number of attention heads must be
divisible by the tensor-parallel size, and the KV heads must split evenly (or, when there are
fewer KV heads than GPUs, the GPU count must be a multiple of them). The help line lists the
sizes that work for this model.
"""),
    "SC405": ("not enough GPUs", """
The models' replicas together need more GPUs than `hardware` has (`gpus_per_node` x `nodes`).
Each replica takes whole GPUs on one node. The help line gives a node count that holds them.
"""),
    "SC406": ("replica larger than a node", """
Tensor parallelism stays within one node (it needs NVLink-class bandwidth). A replica that
needs more GPUs than a node has must use pipeline stages across nodes
(`parallel: {tensor: 8, pipeline: 2}`), and the hardware must have enough nodes.
"""),
    "SC407": ("marginal fit", """
The plan fits, but within 3% of the limit. Real start-up figures vary a little with driver and
engine builds; leave some headroom.
"""),
    "SC408": ("memory figures are estimates", """
This engine publishes no memory accounting that stackc can follow as closely as vLLM's, so the
KV-cache figures are estimates. Check the engine's start-up log.
"""),
    "SC409": ("fewer running sequences than asked", """
`max_num_seqs` (sequences the engine runs at once) is below `concurrency`. The KV cache may hold
them, but the engine will queue the rest.
"""),
    "SC410": ("replica spans nodes", """
A replica needs more GPUs than one node has, so `gpus: auto` chose tensor parallelism within each
node and pipeline stages across nodes. It works, but activations cross the network between stages;
a larger GPU or a smaller format may keep the model on one node.
"""),
    "SC411": ("partial offload to host memory", """
llama.cpp and Ollama keep the layers that do not fit on the GPU in host memory and run them on the
CPU. The model starts, but decoding reads those layers from DDR instead of GPU memory, so it is
several times slower; the message estimates how much from the two memory bandwidths. stackc sets
`--n-gpu-layers` for llama.cpp to the layers that fit; Ollama splits the model itself.
"""),
    "SC412": ("not enough host memory", """
A node needs more RAM than it has for what runs on it: each replica's KV-cache CPU tier (host
memory the engine pins at start-up), the weights of layers a partial offload keeps on the CPU,
and the engines' own processes (an estimate: 4 GiB plus 4 GiB per GPU for vLLM, SGLang, TGI
and TensorRT-LLM; 1 GiB plus 1 GiB per GPU for llama.cpp and Ollama). 10% of the RAM is left
to the system. The RAM is `hardware.memory_per_node` on-prem and the instance type's on a
cloud, where the planner already picks the cheapest instance type with enough; the help line
gives the largest CPU tier that fits.
"""),
    # ---------------------------------------------------------------- SC5xx compatibility
    "SC501": ("engine does not load this format", """
The engine (at this version) cannot run weights in this quantization format: vLLM dropped GGUF
and bitsandbytes after v0.20, llama.cpp and Ollama run only GGUF, TensorRT-LLM does not load
GGUF or bitsandbytes. The help line names engines or formats that work.
"""),
    "SC502": ("format needs a different GPU", """
The quantization needs GPU features this GPU lacks: FP8 compute needs compute capability 8.9
(Ada, Hopper) or newer, FP4 needs Blackwell, Marlin kernels need Ampere. Where the engine
cannot fall back, it is an error.
"""),
    "SC503": ("runs in a degraded mode", """
The engine runs this combination, but not at full speed or not exactly as written: FP8 weights
on Ampere run weight-only through Marlin in vLLM; NVFP4 below Blackwell is emulated; an FP8 KV
cache becomes q8_0 in llama.cpp and Ollama.
"""),
    "SC504": ("task not supported", """
The engine does not serve this task (`embed`, `rerank`), or the model is an embedding encoder
asked to `generate`.
"""),
    "SC505": ("engine not available for this GPU", """
The engine does not run on this GPU vendor (TensorRT-LLM is NVIDIA-only; no engine but
llama.cpp and Ollama runs on Apple Silicon), or stackc has no pinned image of it for this
vendor. Give an `image:` or pick another engine.
"""),
    "SC507": ("feature not supported by the engine", """
The engine does not run speculative decoding with a draft model, or does not serve LoRA
adapters.
"""),
    "SC508": ("weights do not match the quantization", """
The loaded artifact (`weights`, else `model`) is in another format than `quantization` says,
and the engine cannot convert it while loading. Engines quantize some formats at load time
(vLLM and SGLang: unquantized -> FP8); AWQ, GPTQ and GGUF need pre-quantized checkpoints.
"""),
    "SC509": ("weights in a form the engine cannot load", """
Ollama needs an Ollama tag or a GGUF repository (`hf.co/org/repo-GGUF:Q4_K_M`) in `weights:`;
GGUF quantizations other than Q4_K_M, Q5_K_M and Q8_0 cannot be sized yet.
"""),
    "SC510": ("setting has no effect", """
The engine has no equivalent of this setting (llama.cpp and Ollama take no memory share; some
engines have no switch for prefix caching). It is ignored.
"""),
    "SC511": ("engine_args repeats a flag stackc sets", """
`engine_args` is an escape hatch for flags stackc does not manage. A flag it does manage
(`--max-model-len`, `--tensor-parallel-size`, ...) would conflict with the plan, so set the spec
field instead. Flag names are compared after normalising `_`/`-`, `--flag=value` and short forms
(`-tp`).
"""),
    "SC512": ("engine cannot run a KV-cache tier", """
`tiering.kv_cache` applies to every generative model, and this model's engine cannot keep its
KV cache in one of the tiers. vLLM runs a `cpu` tier on its native offloading and `disk` and
`redis` tiers on LMCache (both from 0.14; LMCache is not in the ROCm image); SGLang runs `cpu`
and `disk` on its hierarchical cache (the disk below a host-memory tier, no Redis);
TensorRT-LLM offloads to host memory only; llama.cpp, Ollama and TGI keep the KV cache in GPU
memory. docs/tiering.md lists what each engine runs and how.
"""),
    "SC513": ("prefix-aware routing without prefix caching", """
`routing: prefix-aware` sends requests that share a prefix to the replica that served it last,
so that replica reuses the prefix's KV cache. With `prefix_caching: false` the engine keeps
nothing to reuse: the routing only unbalances the replicas. Turn prefix caching back on (the
default), or route round-robin.
"""),
    "SC514": ("overflow on saturation also takes errors", """
The gateway (LiteLLM) moves a request to the next overflow destination when every local
deployment of the model failed it, whatever the failure: a request beyond `max_in_flight` is
refused inside the gateway (`saturated`), and a local 5xx or timeout fails the same way
(`error`). A destination that lists `saturated` without `error` therefore also receives
requests a local model failed. Add `error` to its `when` to make the spec say what runs.
"""),
    "SC515": ("session header the gateway does not pass on", """
`routing: session` hashes on `tiering.session_key`, a header the router must see. The gateway
(LiteLLM) forwards only headers that start with `x-` to the models behind it, so a session key
without that prefix would never reach the router and every request would be spread round-robin.
"""),
    # ---------------------------------------------------------------- SC6xx targets
    "SC601": ("target cannot autoscale", """
compose, systemd and terraform run a fixed number of replicas. Replica ranges
(`replicas: {min, max}`) and `autoscale` are expressed by the helm target (KEDA). Set
`replicas: N` in the environment you build for this target.
"""),
    "SC602": ("target cannot run on this GPU", """
The target has no way to give containers or services this kind of GPU (Apple Silicon is for
planning only; no target emits for it yet).
"""),
    "SC603": ("target runs on one host", """
compose runs on one host; a stack with `hardware.nodes` above 1 needs a multi-node target. If
the models fit on one node, set `hardware.nodes: 1` for this environment.
"""),
    "SC604": ("not expressible by this target yet", """
The target does not emit this part of the spec yet (KV-cache tiers, prefix-aware or session
routing, overflow to hosted APIs). stackc says so instead of dropping it silently; remove it for
this target or build with a target that has it.
"""),
    "SC605": ("engine the target cannot run", """
The target deploys models through a runtime that runs one engine only. The helm target writes
values for the vLLM production-stack chart (`vllm-stack`), whose Deployments start `vllm serve`:
llama.cpp, Ollama, TGI, TensorRT-LLM and SGLang models cannot be expressed there. Set
`engine: vllm` for the model (the planner re-checks the fit), or build this stack with the
compose target.
"""),
    "SC606": ("weights source the target cannot fetch", """
The target fetches weights one way only. In the helm target each model's init container
downloads a Hugging Face repository into the model's cache claim; weights from S3 or from a
path on the host are not reachable from a pod. Publish the weights to a (private) Hugging Face
repository, or pre-fill a claim and name it in `kubernetes.model_cache_claim` with `hf:` weights.
"""),
    "SC607": ("the nodes cannot be addressed as written", """
Kubernetes needs facts stackc cannot guess: the node label value that names the GPU (the
catalog knows it for common GPUs and `nvidia.com/gpu.product`), a model-cache claim that replicas
on several nodes can all mount (`ReadWriteMany`; a `ReadWriteOnce` volume attaches to one node,
so replicas elsewhere hang in `ContainerCreating` with a multi-attach error), and names the chart
derives that fit in a 63-character DNS label. The systemd target needs each node's private address
(`systemd.node_addresses`) for a stack on several hosts: engines on the other nodes listen there,
and the router and Prometheus on node-0 reach them there.
"""),
    "SC608": ("a replica spans nodes", """
One replica of this model needs more GPUs than one node has, so vLLM would run pipeline
parallel across nodes. The helm target does not emit the chart's Ray cluster (`raySpec`): a
multi-node replica needs KubeRay, RDMA networking and a shared model cache that stackc cannot
check. Use a node type with enough GPUs, or a quantization that fits one node.
"""),
    "SC609": ("models share a GPU", """
The planner put small models on one GPU, each with a share of its memory, as compose and systemd
run them. Kubernetes hands GPUs to pods whole (`nvidia.com/gpu: 1`) unless the cluster slices
them (MIG, time-slicing), so on the helm target each of these models takes a GPU of its own:
a warning while the hardware still has enough GPUs, an error when it does not.
"""),
    "SC610": ("the target provisions cloud machines", """
The terraform target writes a module that creates the stack's machines on a cloud: it needs
`hardware.provider` (`aws`, `gcp` or `azure`) and `hardware.region`. A stack on your own servers is built with
the systemd or compose target instead.
"""),
    "SC611": ("scale to zero with nothing to wake the model", """
`replicas: {min: 0}` lets the autoscaler remove a model's last pod. The helm target's autoscaler
(KEDA) scales on the engine's own metrics (queue depth, KV-cache usage, request rate), and those
disappear with the last pod: nothing would ever scale the model up again, and no component holds
a request while a pod starts (minutes, for a large model). Set `replicas.min: 1`. Scaling to zero
needs a component that counts and holds requests while the model wakes (KEDA's HTTP add-on, or
the gateway queueing them), which stackc does not emit yet.
"""),
    "SC612": ("the first boot cannot install this engine as pinned", """
A cloud node installs the engines it runs natively (vLLM, SGLang) and the gateway into virtual
environments, from hashed lock files that ship with stackc (`compiler/locks/`, regenerated by
its `regenerate.sh`): every package pinned to one version and the sha256 of its files, so a boot
next month installs what was tested. There is a lock for each pinned release only, and each
needs the boot image's Python to be in the range its packages accept. An `image:` with another
version has no lock; remove `image:` to run the pinned release.
"""),
    "SC613": ("the services would run as a login account", """
Every service runs as one system account (`systemd.user`, default `stackc`) that owns the model
cache and nothing else. On a cloud the image has a login account of its own (`ubuntu` on AWS's
Ubuntu images, the admin user stackc creates on Azure): the services must not share it, or a
process of the stack holds the operator's keys and sudo rights. Choose another name.
"""),
    "SC614": ("nothing to build", """
The build found no errors, yet the target returned no files for any environment, so there was
nothing to write (and nothing was). A built-in target always writes files; this comes from a
target installed from another package: report it to that package.
"""),
    # ---------------------------------------------------------------- SC7xx safety
    "SC701": ("secret written inline", """
A field that holds a credential (an API key, a Redis URL with a password) has a literal value.
Secrets never appear in a spec or in any generated file: declare the name under `secrets:` and
reference it with `{secret: NAME}`; the value is set at deploy time (`.env`, a Kubernetes
Secret, the cloud's secret store).
"""),
    "SC702": ("secret in engine_args", """
An `engine_args` flag whose name has a credential word (`api-key`, `hf-token`, `hf-auth`,
`password`, `secret`) has a value, of any type, or carries one after `=` in its key: it would be
written into generated files. Use the engine's environment variable through a declared secret
instead. A `true` or `false` value writes no credential and is allowed.
"""),
    "SC703": ("weights revision not pinned", """
`revision` names a branch or tag, which can move: the same spec could load different weights
tomorrow. Pin the 40-character commit hash.
"""),
    "SC704": ("gateway without a key", """
The OpenAI-compatible gateway accepts any request. On a shared network anyone who reaches the
port can use your GPUs. Declare a secret and set `gateway.api_key: {secret: NAME}`.
"""),
    "SC705": ("client headers reach a hosted API", """
`routing: session` needs the session header to reach the router, so the gateway (LiteLLM) is
told to forward clients' `x-` headers upstream. It forwards all of them, to every deployment of
the model, the hosted overflow destinations included. LiteLLM also accepts its key in an
`x-litellm-api-key` header, which would then travel to the hosted API: clients must send the key
as `Authorization: Bearer`, and nothing private belongs in `x-` headers.
"""),
    "SC706": ("credential inside a URL", """
A URL in the spec carries a credential: a user name or password before the host
(`https://user:pass@host`), or a query parameter that holds a key (`?api_key=`, `?token=`,
`?sig=`). The URL would be written as it is into every generated file. Keep the URL plain and
give the credential as a declared secret (`api_key: {secret: NAME}`, or the engine's
environment variable).
"""),
    "SC707": ("token-shaped literal", """
A value has the shape of a well-known credential (`sk-...`, `hf_...`, `ghp_...`, `AKIA...`, a
Slack or GitLab token, a PEM private key), wherever it is in the spec: a served name, a
revision, an `engine_args` key or value, an environment's override. Whatever the field, it would
be written into the generated files. Declare a secret under `secrets:` and reference it.
"""),
    "SC710": ("unsafe path in the output directory", """
Something inside the output directory stands where a generated file or directory goes: a
symbolic link, a file where a directory belongs, or a special file. stackc never writes through
a link (a committed link could point anywhere, such as `~/.ssh`), so it stops before writing
anything. Remove the entry and build again.
"""),
    "SC711": ("a file stackc did not write is in the way", """
A file at a path this build writes is not in the output directory's manifest
(`.stackc-manifest.json`): stackc did not write it and will not overwrite it. Move it away, or
choose another output directory.
"""),
    "SC712": ("output directory is a system directory", """
`-o` names the filesystem root, a directory directly under it (`/etc`, `/tmp`, `/home`), or
your home directory. A build manages every file it lists there, so it needs a directory of its
own, such as `deploy/out`.
"""),
    "SC713": ("unreadable build journal", """
`.stackc-journal.json` is what stackc writes while it switches the output directory from one
build to the next, so that a build killed half-way is finished by the next run. This one cannot
be read. If no build is running, delete it and build again.
"""),
    "SC714": ("the output cannot be written", """
The operating system refused a write: no permission, no space left, a read-only filesystem. A
build is written into a staging directory first and switched in one step, so when this happens
before the switch, the output directory is as it was.
"""),
    "SC715": ("edited stale file kept", """
An earlier build wrote this file and this build no longer does, so it would be removed; but its
content no longer matches the digest in the manifest, so someone edited it. stackc keeps it and
says so. Delete it by hand, or build with `--force` to remove it.
"""),
    "SC716": ("published without TLS", """
The target opens the gateway (and the chat UI, if there is one) on the machine's own network
interfaces in plain HTTP, so the bearer key and every prompt and answer can be read by anyone on
the path. Declare `gateway.tls` (a certificate and key by path; stackc never writes them) on a
target that terminates TLS, or put a TLS-terminating proxy or load balancer in front and open
the port only to it. It is a warning on compose and systemd, and an error on terraform, whose
machines have public IP addresses: a cloud stack is built with `gateway.tls` only. A cluster
target (helm) publishes nothing outside the cluster without `gateway.tls` (then an Ingress
terminates it) and does not warn.
"""),
}


def explain(code: str) -> str | None:
    entry = CODES.get(code.upper())
    if entry is None:
        return None
    title, text = entry
    anchor = f"{code.lower()}-{title.lower().replace(' ', '-')}"
    anchor = "".join(c for c in anchor if c.isalnum() or c == "-")
    return f"{code.upper()}: {title}\n\n{text.strip()}\n\nAll codes: docs/diagnostics.md#{anchor}\n"


FAMILIES = {
    "SC0": "Internal and the command line", "SC1": "YAML and syntax", "SC2": "Schema", "SC3": "References and resolution",
    "SC4": "Capacity and parallelism", "SC5": "Compatibility", "SC6": "What a target cannot express",
    "SC7": "Security and safety",
}


def markdown() -> str:
    """docs/diagnostics.md, generated from this table (a test keeps the file in sync)."""
    out = ["# Diagnostic codes", "",
           "Every problem stackc reports has a stable code. `stackc explain CODE` prints the same text.",
           "This file is generated from `compiler/codes.py`.", ""]
    family = None
    for code, (title, text) in CODES.items():
        if code[:3] != family:
            family = code[:3]
            out += [f"## {family}xx: {FAMILIES[family]}", ""]
        out += [f"### {code}: {title}", "", text.strip(), ""]
    return "\n".join(out)
