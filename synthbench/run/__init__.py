"""Running a pipeline: the stage contract (`run.stage`), run folders, manifests and `synthbench run` (`run.workbench`), and the same stages on Ray Data (`run.rayengine`)."""
