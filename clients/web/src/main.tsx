import { render } from 'preact';

import { App } from './components/App';
import { store } from './state';
import './styles.css';

const root = document.getElementById('app')!;
const draw = () => render(<App />, root);
store.core.subscribe(draw);
draw();
void store.session.boot();
