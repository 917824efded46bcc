#!/usr/bin/env bash
# Prints the path of a working Python of the given minor version (e.g. 3.10), or fails.
# pyenv shims exist for every installed version but fail unless it is selected, so each
# candidate is run, not just found.
set -u
want=$1
for candidate in "$(pyenv root 2>/dev/null)"/versions/"$want".*/bin/python "python$want"; do
  if out=$("$candidate" -c 'import sys; print(sys.executable, "%d.%d" % sys.version_info[:2])' 2>/dev/null) \
     && [ "${out##* }" = "$want" ]; then
    echo "${out% *}"
    exit 0
  fi
done
echo "Python $want not found (expected under \$(pyenv root)/versions/)" >&2
exit 1
