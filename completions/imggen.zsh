
#compdef imggen

_imggen_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _IMGGEN_COMPLETE=complete_zsh imggen)
}

compdef _imggen_completion imggen

