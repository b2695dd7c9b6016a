" For tests/editors.rs: checks that Vim recognises the buffer as flx and loads
" the ftplugin and the indent file, then writes the syntax group of every byte
" (one line of comma-separated group names per buffer line) to $FLX_SYNTAX_OUT.
filetype plugin indent on
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
if &indentexpr !=# 'FlxIndent()'
  call writefile(['the indent file did not set indentexpr'], s:out)
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

" Re-indenting a flat block nests it by brackets, comments aside.
enew
setfiletype flx
call setline(1, ['proc main(n = 3) {  # a comment', 'let x = [', '1, 2,', ']', 'print(x)', '}'])
normal! gg=G
let s:indents = map(range(1, 6), 'indent(v:val)')
if s:indents != [0, 4, 8, 4, 4, 0]
  call writefile(['indentation is ' . string(s:indents)], s:out)
  cquit!
endif
quitall!
