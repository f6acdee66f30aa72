"""What only an instructor runs, and the student release leaves out: release (stubs, leak
finder, kit), dev check and dev record, the live `ref` for hidden checks, grade and batches,
gradebooks, the class report (classreport/) and grading platforms (platforms/)."""
