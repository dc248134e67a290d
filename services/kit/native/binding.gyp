{
  "targets": [
    {
      "target_name": "valora_tree_shap",
      "sources": ["tree_shap.c"],
      "cflags": ["-O3", "-std=c11", "-Wall", "-Wextra"],
      "xcode_settings": { "OTHER_CFLAGS": ["-O3", "-std=c11"] }
    }
  ]
}
