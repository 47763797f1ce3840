"""Train: pick a dataset and an architecture, set every knob, launch a run."""

import json

import streamlit as st

from engine import jobs, validation
from engine.weights import warm_start
from engine.config import RunConfig
from engine.errors import ConfigError, LabError
from engine.store import open_store
from ui import access, augment_view, cached, figures, tables, train_form, transfer_form
from ui import doctor as doctor_ui
from ui import plan as plan_ui
from ui.text import markdown_text

# A warm standby worker (TensorFlow already imported) takes the next launch; cheap when one waits.
try:
    jobs.ensure_standby()
except (LabError, OSError):
    pass  # a cold worker still starts on Launch

plan_ui.apply_pending(cached.arch_catalog())  # a plan made on the last click fills the form before it is drawn
st.title("Train")

form_column, preview_column = st.columns([3, 2], gap="large")
with form_column:
    plan_box = st.container(border=True)
    run_box = st.container(border=True)
    data_box = st.container(border=True)
    model_box = st.container(border=True)
    training_box = st.container(border=True)
    with run_box:
        st.subheader("Run")
        run_values = train_form.run_section()
    with data_box:
        st.subheader("Data")
        data = train_form.dataset_section(cached.dataset_catalog())
        plan_ui.reasons("data", data)
    with model_box:
        st.subheader("Model")
        model = train_form.model_section(cached.arch_catalog())
        plan_ui.reasons("model", model)
    with training_box:
        st.subheader("Training")
        training = train_form.training_section()
        plan_ui.reasons("training", training)
        st.markdown("**Transfer learning**")
        training.update(transfer_form.transfer_section(
            warm_start.start_points(open_store()), model["architecture"], access.can_change() and not access.demo()
        ))
    training["seed"] = run_values["seed"]
    with plan_box:
        st.subheader("Plan")
        plan_ui.plan_box(data, run_values["seed"], allowed=access.can_change(), demo=access.demo())
    launch_clicked = st.button("Launch", key="train_launch", type="primary", icon=":material/rocket_launch:")
    summary_box = st.container()

raw_config = {"name": run_values["name"], "data": data, "model": model, "training": training}
try:
    config = RunConfig.from_dict(raw_config)
    problems = validation.problems(config)
except ConfigError as e:
    config, problems = None, e.problems

boxes = {"run": run_box, "data": data_box, "model": model_box, "training": training_box, "other": summary_box}
for problem in problems:
    boxes[train_form.section_of(problem)].error(markdown_text(problem.message), icon=":material/error:")

if launch_clicked:
    if not access.can_change():
        summary_box.error(access.refusal(), icon=":material/lock:")
    elif problems:
        summary_box.error(f"No run was created: fix the {len(problems)} problem(s) marked above.")
    else:
        try:
            store = open_store()
            run_id = jobs.launch(config, store=store, **access.engine_args())  # with folds: one run per fold, as one group
            group = store.get_run(run_id).group
            run_ids = [run.id for run in store.list_runs(group=group)] if group else [run_id]
        except LabError as e:
            summary_box.error(markdown_text(e))
        else:
            st.switch_page("app_pages/runs.py", query_params={"runs": ",".join(map(str, sorted(run_ids)))})

with form_column, st.expander("Doctor: check the dataset, find a learning rate", icon=":material/stethoscope:"):
    doctor_ui.dataset_check(data, training["class_weight"], run_values["seed"])
    # The range test trains in a subprocess outside the queue (and the demo's caps): not on a demo.
    doctor_ui.lr_find(raw_config, train_form.LEARNING_RATES,
                      disabled=bool(problems) or access.demo() or not access.can_change())

with preview_column:
    st.subheader("Dataset preview")
    # Large generated sets are not generated on every option change: only when cached, small, or asked for.
    facts, preview_error = cached.dataset_facts(data["dataset"], data["options"])
    preview = None
    if facts is not None:
        preview_key = json.dumps([data["dataset"], data["options"]], sort_keys=True)
        asked = st.session_state.get("_train_preview_asked", set())
        if not facts["auto_preview"] and preview_key not in asked:
            train_form.dataset_metrics(facts["num_samples"], facts["volume_shape"], facts["num_classes"])
            st.caption(
                f"About {tables.format_bytes(facts['estimated_bytes'])} once generated "
                f"(classes: {markdown_text(', '.join(map(str, facts['class_names'])))}). "
                "Generating it takes a while; the run generates it anyway when it starts."
            )
            if st.button("Generate preview", key="train_generate_preview", icon=":material/visibility:"):
                st.session_state["_train_preview_asked"] = asked | {preview_key}
                st.rerun()
        else:
            preview, preview_error = cached.preview_or_error(data["dataset"], data["options"])
    if preview_error:
        st.error(markdown_text(preview_error))
    elif preview is not None:
        train_form.dataset_metrics(preview["num_samples"], preview["volume_shape"], preview["num_classes"])
        st.plotly_chart(
            figures.class_balance_figure(preview["class_names"], preview["class_counts"]),
            key="train_class_balance", config={"displayModeBar": False},
        )
        st.plotly_chart(
            figures.slice_grid_figure([preview["slices"]], [preview["slice_titles"]], row_height=170),
            key="train_slices", config={"displayModeBar": False},
        )
        shown = len(preview["slice_titles"])
        st.caption("Middle axial slice of one sample per class" + (
            "." if shown == preview["num_classes"] else f" (the first {shown} of {preview['num_classes']} classes)."))

    if training["augment"]:
        # The preview depends on the data and the augmentation only: a model problem does not hold it back.
        blocking = [p for p in problems if train_form.section_of(p) != "model"]
        augment_view.preview_panel(config, ready=not blocking and preview is not None and not preview_error)

    st.subheader("Architecture")
    shape_source = preview or facts  # the known shape is enough for the layer table
    if shape_source is None or preview_error:
        st.info("The model summary needs a dataset that loads.")
    elif any(train_form.section_of(p) == "model" for p in problems):
        st.info("Fix the model fields to see the layer table.")
    else:
        try:
            description = cached.describe_model(
                json.dumps(model, sort_keys=True), tuple(shape_source["volume_shape"]), shape_source["num_classes"],
                max(1, training["batch_size"]),
            )
        except ConfigError as e:
            for problem in e.problems:
                model_box.error(markdown_text(problem.message), icon=":material/error:")
            st.warning("This architecture cannot take this dataset's volumes; see the Model section.")
        except LabError as e:
            st.error(markdown_text(e))
        else:
            params_column, memory_column = st.columns(2)
            params_column.metric("Parameters", f"{description['params']:,}")
            memory_column.metric(
                "Training memory",
                tables.format_bytes(description["estimated_training_bytes"]),
                help=f"Weights, gradients and optimizer state plus the activations of one batch of "
                f"{training['batch_size']} (a rough estimate).",
            )
            st.caption(
                f"Activations per sample: {tables.format_bytes(description['activation_bytes_per_sample'])}."
            )
            device_name, device_bytes = cached.device_memory()
            if device_bytes and description["estimated_training_bytes"] > 0.9 * device_bytes:
                st.warning(
                    f"About {tables.format_bytes(description['estimated_training_bytes'])} will not fit in "
                    f"{device_name} ({tables.format_bytes(device_bytes)}): lower the batch size or the width multiplier.",
                    icon=":material/memory:",
                )
            st.dataframe(
                [
                    {"layer": row["name"], "type": row["type"],
                     "output": " × ".join("?" if n is None else str(n) for n in row["output_shape"][1:]),
                     "params": row["params"]}
                    for row in description["layers"]
                ],
                key="train_layers", hide_index=True, height=300,
                # Widths that fit the preview column at 1280 px, so "params" is not cut off at the edge.
                column_config={
                    "layer": st.column_config.TextColumn("layer", width=64),
                    "type": st.column_config.TextColumn("type", width=72),
                    "output": st.column_config.TextColumn("output", width=84),
                    "params": st.column_config.NumberColumn("params", width=64, format="localized"),
                },
            )
