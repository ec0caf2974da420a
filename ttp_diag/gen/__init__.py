"""Generation and training: from user profiles to score tables (the ``gen`` extra).

This subpackage is heavy (torch, transformers, peft, optionally vLLM) and is never
imported by :mod:`ttp_diag` itself or by the analysis layers. Import its modules
explicitly, for example::

    from ttp_diag.gen.data import load_huffpost_users, build_examples
    from ttp_diag.gen.candidates import generate_candidates

Modules
-------
data        loaders for LaMP, LongLaMP and the JSONL user format; user selection and splits
retrieval   dense MiniLM retrieval from a user's earlier items only
prompts     the paper's policy templates (E.1), the reward-model prompt (E.2), personas
backends    one ``generate`` interface over transformers (prefix / batched modes) and tiny
            random models; vllm_backend (``vllm_kwargs``), model_files (GGUF), sampling
candidates  resumable N-per-query candidate generation (checksummed per-query files)
run_config  ``RunConfig``: every setting with its stage and CLI flag (field metadata)
run_folder  run-folder lock and repair of damaged bookkeeping files
shards      ``--shard I/K`` user split and ``ttp-diag merge``
pipeline    data -> candidates -> labels -> reward models -> scores, cached per stage
evaluation  generation-quality evaluation: ICL, ARGS, judges, per-user LoRA, Tables 2/4/5/6
"""
