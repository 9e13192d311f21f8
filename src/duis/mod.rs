//! DUIS 5.4 wire format: request parser and response writer (helper C fills this).
