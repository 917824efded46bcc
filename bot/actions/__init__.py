"""Custom actions of 房本助手: status lookup, guidance, FAQ, petitions, form validators."""
