// Translation unit that owns the shared LibTorch precompiled header (see torch_pch.h).
