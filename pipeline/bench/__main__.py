"""The bench's fresh interpreters: `python -m ganprov.pipeline.bench` serves the memory stage (MemoryProcess),
`python -m ganprov.pipeline.bench baseline` stages 1 and 3."""
import sys

from .baseline import serve_baseline_job
from .memory import serve_memory_job

serve_baseline_job() if sys.argv[1:] == ["baseline"] else serve_memory_job()
