"""Transfer processes (DSP 2025-1) and the sovereign data plane: data pulled under agreements."""
