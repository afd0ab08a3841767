//! TODO(helper): forecast
