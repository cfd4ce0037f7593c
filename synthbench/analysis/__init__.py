"""Looking at the rows (`metrics`, `embedmap`, `audit`) and asking whether they work (`tstr`, `evalgen`, `evaluate`, `datawork`)."""
