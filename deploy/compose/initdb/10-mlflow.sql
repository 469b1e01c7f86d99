-- MLflow keeps its tables in a database of its own: recops' database is left to
-- the recops event log and experiment state (issue 13, part 1).
CREATE DATABASE mlflow;
