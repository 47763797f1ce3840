"""Folds and searches: objects that yield ``RunConfig``s into the same launch path as a single run.

Like KerasTuner's ``Oracle``, nothing here trains: a cross-validation is k
configs that differ only in ``data.fold`` (engine/datasets/splits.py); a sweep (control.py) asks
its search (search.py: grid, random, Optuna's TPE) for one configuration at a
time and queues it through ``engine.jobs`` as runs of one group, which the
existing worker slots execute. When a trial's runs have ended, whoever notices
(the worker on its way out, ``sweep status``, the Sweeps page) tells the
search and asks for the next. Optuna's study lives in the lab's own database
(study.py); its pruner (pruning.py) is built by the worker and handed to training, whose
recorder consults it each epoch. summary.py and engine/statistics.py turn a group's runs into
mean ± std and confidence intervals.

The package imports nothing itself: import the module you need. The sweeps sit
above ``engine.jobs`` (they queue through it) and below the worker.
"""
