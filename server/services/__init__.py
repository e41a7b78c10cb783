"""Use cases of the sync server. No Flask here: views call these with a unit of work.

Every function takes a :class:`~server.services.unit_of_work.UnitOfWork` first and the
acting :class:`~server.auth.Principal`; it checks authorization, changes rows, records
custody events through ``server.services.custody.record_custody`` where a state change
must be logged, and leaves committing to the caller (one ``uow.commit()`` per request).
Errors are those of ``server.errors``.
"""
