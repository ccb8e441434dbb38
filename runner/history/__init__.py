"""The run history: postrun's own database of past runs (``store``), where it lives
(``location``), how a value is judged against its past (``judge``), and the analysts' views of it
(``query``, ``page``)."""
