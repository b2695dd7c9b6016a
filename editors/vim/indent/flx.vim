" Vim indent file for flx: one level deeper after a line that ends with an
" opening bracket, one level back on a line that starts with a closing one.
if exists("b:did_indent")
  finish
endif
let b:did_indent = 1

setlocal autoindent indentexpr=FlxIndent() indentkeys=0{,0},0),0],!^F,o,O,e
let b:undo_indent = "setlocal autoindent< indentexpr< indentkeys<"

if exists("*FlxIndent")
  finish
endif

function FlxIndent() abort
  let prev = prevnonblank(v:lnum - 1)
  if prev == 0
    return 0
  endif
  let ind = indent(prev)
  " The previous line without its comment.
  let text = substitute(getline(prev), '\s*#[^"]*$', '', '')
  if text =~ '[[({]\s*$'
    let ind += shiftwidth()
  endif
  if getline(v:lnum) =~ '^\s*[\])}]'
    let ind -= shiftwidth()
  endif
  return ind
endfunction
