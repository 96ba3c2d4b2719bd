"""Speed harnesses, the PyTorch reference model of the official equations, and per-commit timing.

Outside the product package and its wheel. Importing this package (or :mod:`.models`, :mod:`.harness`,
:mod:`.workloads`, :mod:`.run`, :mod:`.report`, :mod:`.commits`) imports neither paddle, torch nor
``paddlenlp_fastformer``: the fork servers of :mod:`.harness` import this package in processes that
must hold exactly one framework, and :mod:`.commits` imports another checkout's model package after it.

* :mod:`.speed`: ``python -m benchmarks.speed``: the presets and the method (see its docstring);
* :mod:`.models`: what is measured: model specs, sizes, FLOP counts, the attention-memory estimate;
* :mod:`.workloads`: building each model (or exported engine) and one training or inference step;
* :mod:`.harness`: fork servers, forked children, time limits, peak memory;
* :mod:`.run`: the rounds over all cases and the summary rows;
* :mod:`.report`: the CSV, the markdown table and the plot;
* :mod:`.torch_reference`: the PyTorch model of the official equations (imports only torch);
* :mod:`.commits`: training-step CPU time of the Paddle models at several commits.
"""
