"""What the τ-bench-faithful vertical domains share: τ-bench's data hash and typed columns that
hold JSON values losslessly."""
