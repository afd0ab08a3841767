//! TODO(helper): outliers
