#!/usr/bin/env python3
"""Regenerates crates/tollgate-llm/src/prices.toml, the price table the
gateway ships, from LiteLLM's model_prices_and_context_window.json (the
`litellm` wheel on PyPI carries it as
litellm/model_prices_and_context_window_backup.json):

    pip download litellm --no-deps -d /tmp/l && cd /tmp/l && unzip -o -q litellm-*.whl \
        litellm/model_prices_and_context_window_backup.json
    python3 scripts/prices_from_litellm.py /tmp/l/litellm/model_prices_and_context_window_backup.json 1.110.2

Keeps the chat and embedding models of the providers tollgate speaks to,
prices in dollars per million tokens."""

import datetime
import json
import sys

# LiteLLM's provider name -> tollgate's, and the prefix LiteLLM puts on keys.
PROVIDERS = {
    "openai": ("openai", ""),
    "anthropic": ("anthropic", ""),
    "gemini": ("gemini", "gemini/"),
    "mistral": ("mistral", "mistral/"),
    "cohere_chat": ("cohere", ""),
    "cohere": ("cohere", ""),
    "bedrock": ("bedrock", ""),
    "bedrock_converse": ("bedrock", ""),
}
FIELDS = (("input", "input_cost_per_token"), ("output", "output_cost_per_token"),
          ("cache_read", "cache_read_input_token_cost"), ("cache_write", "cache_creation_input_token_cost"))


def per_million(x: float) -> float:
    return round(x * 1_000_000, 6)


def main(path: str, version: str) -> None:
    data = json.load(open(path))
    table: dict[str, dict[str, dict[str, float]]] = {}
    for key, v in data.items():
        if v.get("mode") not in ("chat", "embedding", "responses") or "input_cost_per_token" not in v:
            continue
        mapped = PROVIDERS.get(v.get("litellm_provider", ""))
        if not mapped:
            continue
        provider, prefix = mapped
        if not key.startswith(prefix):
            continue
        model = key[len(prefix):]
        if "/" in model or model.startswith("ft:"):
            continue
        prices = {name: per_million(v[field]) for name, field in FIELDS if isinstance(v.get(field), (int, float))}
        prices.setdefault("output", 0.0)
        table.setdefault(provider, {})[model.lower()] = prices
    out = [
        "# Prices in dollars per million tokens: input, output, and where the provider",
        "# prices them apart, cache reads and cache writes (missing: 0.1x and 1.25x input).",
        f"# Source: LiteLLM {version}, model_prices_and_context_window.json (the wheel's",
        "# backup copy), which follows the providers' pricing pages; generated on",
        f"# {datetime.date.today().isoformat()} by scripts/prices_from_litellm.py. A target's own",
        "# input_cost / output_cost / cache_read_cost / cache_write_cost override these.",
    ]
    for provider in sorted(table):
        out.append(f"\n[{provider}]")
        for model in sorted(table[provider]):
            fields = ", ".join(f"{k} = {v!r}" for k, v in table[provider][model].items())
            out.append(f'"{model}" = {{ {fields} }}')
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
