"""`tsm prepare`: from a dataset as published to list files (mmaction2's formats) and a label map."""
