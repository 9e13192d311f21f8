//! The service catalogue: all 129 Service Reference Variants and their facts (helper A fills this).
