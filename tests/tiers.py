"""The tests of the ``worker`` tier, listed in one place (tests/conftest.py marks them).

A test belongs here when it starts worker processes or TensorFlow: a real training (in this process
or a worker), a ``python -m engine`` subprocess, or so many fake-worker processes that it takes tens of
seconds. The inner loop, ``python -m pytest -m "not e2e and not worker"``, leaves them out; plain
``python -m pytest`` (CI) runs them. A new test of that kind is listed here or carries
``@pytest.mark.worker`` itself. Entries are node-id prefixes: a file, or one test of a file.
"""

from __future__ import annotations

WORKER_TESTS: tuple[str, ...] = (
    # Worker processes (real TensorFlow, or many fake workers), the standby, foreground `engine train`.
    "tests/jobs/test_artefacts_two_machines.py",
    "tests/jobs/test_caps_at_once.py",
    "tests/jobs/test_folder_deleted.py",
    "tests/jobs/test_heartbeat_under_lock.py",
    "tests/jobs/test_lifecycle.py",
    "tests/jobs/test_ownership.py",
    "tests/jobs/test_priority.py",
    "tests/jobs/test_queue.py",
    "tests/jobs/test_ray_executor.py",
    "tests/jobs/test_rebuild_from_folders.py",
    "tests/jobs/test_standby.py",
    "tests/store/test_artefacts_s3.py",  # an S3 server (moto) on loopback
    "tests/sweeps/test_folds.py::test_launch_with_folds_queues_one_run_per_fold_in_one_group",
    "tests/sweeps/test_folds.py::test_three_fold_cv_of_a_tiny_model_from_the_cli",
    "tests/sweeps/test_sweep_cli.py",
    "tests/sweeps/test_sweeps.py",
    "tests/dashboard/test_sweeps_page.py",
    "tests/remedies/test_fix_pairs.py",
    "tests/remedies/test_fix_page.py",
    "tests/remedies/test_fix_real_pair.py",
    # Training with TensorFlow in this process (a fit of a tiny model: seconds to tens of seconds each).
    "tests/training/test_training.py",
    "tests/training/test_transfer.py",
    "tests/training/test_augment.py",  # the tf.data pipeline with every augmentation
    "tests/test_engine_cli.py::test_train_runs_and_show_report_the_run",
    "tests/datasets/test_import_cli.py::test_import_list_train_and_delete_from_the_command_line",
    "tests/training/test_training_metrics.py",
    "tests/training/test_learning.py",
    "tests/training/test_checkpoints.py",
    "tests/training/test_bounded_reading.py",
    "tests/training/test_epoch_end.py",
    "tests/training/test_execution.py::test_a_run_of_a_small_model_on_a_bfloat16_cpu_stays_float32_and_says_why",
    "tests/training/test_execution.py::test_a_run_on_a_cpu_without_bfloat16_records_float32_and_why",
    "tests/training/test_execution.py::test_a_run_on_a_bfloat16_cpu_trains_mixed_with_a_float32_output",
    "tests/training/test_execution.py::test_a_run_records_under_a_mirrored_strategy_with_the_batch_scaled",
    "tests/training/test_bench.py::test_the_gpu_check_dry_run_prints_one_json_line_with_every_arm",
    "tests/training/test_bench.py::test_a_non_cubic_shape_is_the_built_in_resampled_through_the_importer",
    "tests/doctor/test_doctor_training.py",
    "tests/doctor/test_lr_find.py::test_a_tiny_sweep_is_recorded_in_the_store_and_stops_when_the_loss_diverges",
    "tests/evaluation/test_saliency.py::test_every_epoch_matches_sklearn_on_a_real_run",
    "tests/evaluation/test_saliency.py::test_saliency_peaks_on_the_object",
    "tests/evaluation/test_saliency.py::test_every_preset_yields_maps",
    "tests/inference/test_predict.py",
    "tests/planning/test_plan.py::test_the_cli_plans_with_a_range_test_saves_the_config_and_a_planned_run_trains",
    "tests/dashboard/test_train_plan.py::test_plan_for_me_fills_the_form_with_reasons_and_leaves_it_editable",
    # Subprocesses that import the lab afresh (a memory measure, a broken pipe, the dashboard's imports).
    "tests/datasets/test_import_memory.py",
    "tests/store/test_schema_at_once.py",
    "tests/datasets/test_import_pool.py::test_pooled_and_serial_dicom_imports_give_the_same_dataset",
    "tests/datasets/test_import_pool.py::test_bench_import_compares_the_engine_with_pydicom_alone",
    "tests/test_cli_broken_pipe.py",
    "tests/dashboard/test_dashboard_no_tensorflow.py",
    "tests/dashboard/test_inspect_page.py::test_page_never_imports_tensorflow",
    "tests/compare/test_compare_cli.py::test_delete_asks_for_yes_without_a_terminal_and_refuses_active_runs",
    "tests/test_tiers.py::test_the_inner_loop_leaves_out_slow_and_worker_tests",  # a pytest session
    # Every architecture built in TensorFlow (up to 200 M parameters at the CLI's default shape), and a
    # memory probe (a child process that imports TensorFlow). tests/models keeps the parameter counts
    # in the inner loop.
    "tests/test_engine_cli.py::test_datasets_and_archs_list_as_json",
    "tests/jobs/test_admission.py::test_a_run_over_the_memory_is_refused_by_the_estimate_and_force_launches_it",
    "tests/jobs/test_admission.py::test_the_skip_rule_covers_describes_estimate",
    "tests/hosting",
)


def is_worker_test(nodeid: str) -> bool:
    """Whether the test with pytest node id ``nodeid`` is in the worker tier."""
    return any(nodeid == entry or nodeid.startswith((entry + "::", entry + "[", entry + "/"))
               for entry in WORKER_TESTS)
