"""The case-file bag (案卷包): layout, streamed BagIt export, guide and recomputation."""
