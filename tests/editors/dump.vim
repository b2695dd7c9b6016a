" For tests/editors.rs: checks that Vim recognises the buffer as flx and loads
" the ftplugin, then writes the syntax group of every byte (one line of
" comma-separated group names per buffer line) to $FLX_SYNTAX_OUT.
filetype plugin on
syntax on
filetype detect
let s:out = $FLX_SYNTAX_OUT
if &filetype !=# 'flx'
  call writefile(['filetype is "' . &filetype . '", not flx'], s:out)
  cquit!
endif
if &commentstring !=# '# %s'
  call writefile(['the ftplugin did not set commentstring'], s:out)
  cquit!
endif
let s:lines = []
for s:lnum in range(1, line('$'))
  let s:groups = []
  for s:col in range(1, len(getline(s:lnum)))
    call add(s:groups, synIDattr(synID(s:lnum, s:col, 1), 'name'))
  endfor
  call add(s:lines, join(s:groups, ','))
endfor
call writefile(s:lines, s:out)
quitall!
