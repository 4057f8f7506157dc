"""A LangChain user does not pay for LlamaIndex: neither importing nor using ``langchain_codeinterp`` loads it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

_PROBE = textwrap.dedent(
    """
    import json, sys, time

    start = time.perf_counter()
    import langchain_codeinterp
    import_seconds = time.perf_counter() - start
    after_import = sorted(m for m in sys.modules if m == "llama_index" or m.startswith("llama_index."))

    with langchain_codeinterp.CodeInterpreterToolkit(backend_options={"timeout": 30}) as toolkit:
        answer = toolkit.get_tools()[0].invoke({"python_code": "sum(range(10))"})
    after_use = sorted(m for m in sys.modules if m == "llama_index" or m.startswith("llama_index."))
    print(json.dumps({"import_seconds": import_seconds, "after_import": after_import, "after_use": after_use,
                      "answer": answer}))
    """
)


def test_langchain_front_never_imports_llama_index() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["after_import"] == []
    assert report["after_use"] == []
    assert report["answer"] == "result:\n45"
    # Not an assertion (timings vary with load); shown with -s / -rP for the record.
    print(f"import langchain_codeinterp took {report['import_seconds']:.3f} s")
