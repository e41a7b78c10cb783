"""Background work of a server process, one module per job (import the module you need):

* :mod:`server.jobs.inspection` — media inspection of stored originals (the queue is the
  ``evidence`` row; ``InspectionJobs``);
* :mod:`server.jobs.checkpointer` — periodic signed log checkpoints (``Checkpointer``);
* :mod:`server.jobs.periodic` — the daemon thread that runs a task every few seconds
  (``Every``).

:func:`server.components.build_components` wires them; nothing starts at import.
"""
